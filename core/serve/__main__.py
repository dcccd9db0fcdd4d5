"""``python -m core.serve``: the API's production server, chosen by ``CLICKSTREAM_API_SERVER``.

granian by default: on two cores it served this API faster, and with less CPU per event,
than gunicorn's threads (docs/benchmarks.md). gunicorn runs with
``core/serve/gunicorn_config.py``. This module stays outside ``core.api`` so the server's
master process never imports the application: each worker imports ``core.serve.wsgi``
itself and creates its Kafka producer on first use, so no producer crosses a fork.
"""

from __future__ import annotations

import os
import sys

from core.config import PROJECT_ROOT, ConfigError, Settings, env_name
from core.ingest.identity import check_keys

APP = "core.serve.wsgi:app"


def main() -> None:
    settings = Settings.from_env()
    try:
        # One clear line now, rather than a traceback from every worker that imports the app.
        check_keys(settings.jwt)
    except ConfigError as error:
        sys.exit(f"clickstream: {error}")
    if settings.api.server == "gunicorn":
        config = str(PROJECT_ROOT / "core" / "serve" / "gunicorn_config.py")
        os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "-c", config, APP])
    if settings.ops.port:
        # granian binds one address; the operational listener is gunicorn's second bind.
        sys.exit(f"{env_name('ops_port')} needs {env_name('api_server')}=gunicorn")
    from granian import Granian
    from granian.constants import Interfaces

    from core.serve import multiprocess

    # Workers write their metrics into one directory, so any worker's /metrics adds them up.
    multiprocess.enable()
    try:
        Granian(
            APP,
            address=settings.api.host,
            port=settings.api.port,
            interface=Interfaces.WSGI,
            workers=settings.api.workers,
            blocking_threads=settings.api.threads,
            log_access=False,
            # A worker that dies (kill -9, out of memory) is replaced, as gunicorn's are;
            # without this, granian stops the whole server when one worker exits.
            respawn_failed_workers=True,
            respawn_interval=0.5,
        ).serve()
    finally:
        multiprocess.server_exited()


if __name__ == "__main__":
    main()
