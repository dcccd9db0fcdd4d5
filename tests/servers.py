"""Serving a WSGI app (the API, the auth service, a test page) from a thread, on a free port,
and the environment that gives a server or the ETL in a subprocess exactly some settings."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


ROOT = Path(__file__).resolve().parents[1]


def this_checkout(env: dict[str, str]) -> dict[str, str]:
    """``env`` importing this checkout's clickstream first (``PYTHONPATH``), whichever
    checkout the shared environment has installed as editable."""
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}


def venv_with(package: Path, root: Path, *, editable: bool = False) -> Path:
    """The python of a fresh virtual environment in ``root``, seeing the shared
    site-packages, with ``package`` pip-installed (offline, no dependencies)."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", root],
        check=True,
    )
    python = root / "bin" / "python"
    pip = [python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps"]
    installed = subprocess.run(
        [*pip, "--no-build-isolation", *(["-e"] if editable else []), package],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, (
        f"pip install failed (is wheel installed? `make install`):\n{installed.stderr}"
    )
    return python
