"""Metrics shared by gunicorn's workers: prometheus_client's multiprocess mode.

gunicorn's workers share one listening socket, so a scrape reaches one worker at
random; each worker therefore writes its metrics to files in one directory and a
scrape adds them all up. For ``core/serve/gunicorn_config.py``: call :func:`enable`
at import (before the application, hence prometheus_client, is imported),
:func:`worker_exited` from gunicorn's ``child_exit`` hook and :func:`server_exited`
from its ``on_exit`` hook.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: Prefix of the directories :func:`enable` creates (and :func:`server_exited` removes).
PREFIX = "clickstream-metrics-"


def enable() -> Path:
    """Point prometheus_client at a metrics directory with no stale files; returns it.

    An operator's ``PROMETHEUS_MULTIPROC_DIR`` is kept (its ``*.db`` files from an
    earlier run are removed, or counters would start from the old totals); otherwise
    the server gets a fresh directory of its own, so two servers never mix figures.
    """
    if "prometheus_client" in sys.modules and VARIABLE not in os.environ:
        raise RuntimeError("enable() must run before prometheus_client is imported")
    configured = os.environ.get(VARIABLE)
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    else:
        directory = Path(tempfile.mkdtemp(prefix=PREFIX))
        os.environ[VARIABLE] = str(directory)
    return directory


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (spool depth, breaker); its counters stay counted."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


def server_exited() -> None:
    """Remove the metrics directory if :func:`enable` created it (an operator's stays)."""
    directory = Path(os.environ.get(VARIABLE, ""))
    if directory.name.startswith(PREFIX) and directory.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(directory, ignore_errors=True)
