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
from pathlib import Path

from core.config import PROJECT_ROOT, ConfigError, Settings, env_name
from core.ingest.identity import check_keys
from core.serve import lifeline, ports, reload, stack

APP = "core.serve.wsgi:app"
#: How long a start waits for a taken port to be freed before refusing: the time the
#: workers of a server killed a moment ago take to answer their last requests and exit.
PORT_PATIENCE_S = 5.0


def main() -> None:
    settings = Settings.from_env()
    title = (
        stack.process_title(os.environ)
        or f"clickstream-api {settings.api.host}:{settings.api.port}"
    )
    try:
        # One clear line now, rather than a traceback from every worker that imports the app.
        check_keys(settings.jwt)
        # Before binding: a taken port is one clear line naming its holder, not a bind
        # error in a worker, nor a readiness probe answered by someone else's server.
        # A supervisor restarting a crashed server: its old workers may be finishing, or
        # (granian's) serving until this server listens too (core/serve/lifeline.py).
        ports.refuse_if_taken(
            "API",
            env_name("api_port"),
            settings.api.host,
            settings.api.port,
            PORT_PATIENCE_S,
            welcome=lambda holder: lifeline.handing_over(holder, title),
        )
        if settings.ops.port:
            ports.refuse_if_taken(
                "operational",
                env_name("ops_port"),
                settings.ops.host,
                settings.ops.port,
                PORT_PATIENCE_S,
            )
    except (ConfigError, ports.PortTakenError) as error:
        sys.exit(f"clickstream: {error}")
    # Its workers stop after it, even after a kill -9 (core/serve/lifeline.py).
    lifeline.export()
    if settings.api.server == "gunicorn":
        config = str(PROJECT_ROOT / "core" / "serve" / "gunicorn_config.py")
        os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "-c", config, APP])
    if settings.ops.port:
        # granian binds one address; the operational listener is gunicorn's second bind.
        sys.exit(f"{env_name('ops_port')} needs {env_name('api_server')}=gunicorn")
    from granian.constants import Interfaces

    from core.serve import multiprocess
    from core.serve.listener import HandingOverGranian

    # Workers write their metrics into one directory, so any worker's /metrics adds them up.
    multiprocess.enable()
    try:
        server = HandingOverGranian(
            APP,
            address=settings.api.host,
            port=settings.api.port,
            interface=Interfaces.WSGI,
            workers=settings.api.workers,
            blocking_threads=settings.api.threads,
            respawn_interval=settings.api.respawn_interval_s,
            process_name=title,
            log_access=False,
            # A worker that dies (kill -9, out of memory) is replaced, as gunicorn's are;
            # without this, granian stops the whole server when one worker exits.
            respawn_failed_workers=True,
        )
        if settings.api.settings_file:
            # SIGHUP respawns the workers one at a time, each forked after this hook ran.
            server.on_reload(lambda: reload.apply(Path(settings.api.settings_file)))
        server.serve()
    finally:
        multiprocess.server_exited()


if __name__ == "__main__":
    main()
