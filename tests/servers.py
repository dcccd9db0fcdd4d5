"""Serving a WSGI app (the API, the auth service, a test page) from a thread, on a free port,
and the environment that gives a server or the ETL in a subprocess exactly some settings."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import make_server

from core.config import PREFIX, Settings


@contextmanager
def serve(app) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 and a free port while the block runs; yields its base URL.

    A clickstream API's Kafka producer is closed afterwards, so no sender thread outlives it.
    """
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        pipeline = getattr(app, "extensions", {}).get("clickstream.pipeline")
        if pipeline is not None:
            pipeline.publisher.close()


def subprocess_env(settings: Settings, **changes: object) -> dict[str, str]:
    """This process's environment with its ``CLICKSTREAM_*`` variables replaced by those of
    ``settings`` (with ``changes``), for a subprocess that must run with exactly them."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(PREFIX)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return {**env, **settings.replace(**changes).to_env()}
