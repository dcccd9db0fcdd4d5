"""Granian workers that outlive their server only to hand the port over, then stop.

A ``kill -9`` of the server's main process gives its workers no chance to be told, and left
alone they go on serving the port as orphans forever. Each worker therefore watches its
parent (a thread started by :func:`follow_server`, from ``core/serve/wsgi.py``; gunicorn's
workers do the same by themselves). Once orphaned, the worker goes on answering until a
successor, the server its supervisor restarts, listens on the port too (granian's workers
bind with SO_REUSEPORT, so both can), or :data:`HANDOVER_S` passed; then it stops as
granian stops a worker (SIGTERM: its requests in progress are answered first). Clients meet
no refused connection during the restart. Why not ``prctl(PR_SET_PDEATHSIG)``: the kernel
would stop the worker at once, leaving the port closed until the successor is ready.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time

import psutil

from core.serve import ports

log = logging.getLogger(__name__)

#: The variable carrying the server's pid to its workers (set by :func:`export`); not a
#: CLICKSTREAM_* name, which would read as a setting (and be replaced by a reload).
SERVER_PID = "PARENT_SERVER_PID"
#: Longest an orphaned worker serves while waiting for a successor.
HANDOVER_S = 15.0
#: How often a worker looks at its parent, and an orphan for its successor.
POLL_S = 0.2


def export() -> None:
    """In the server's main process: tell the workers it will fork whose children they are."""
    os.environ[SERVER_PID] = str(os.getpid())


def follow_server(port: int, handover_s: float = HANDOVER_S) -> bool:
    """In a worker: stop after the server's death (see the module); whether it watches.

    Nothing to do outside a worker: no exported pid, or this process is the server itself.
    """
    server = os.environ.get(SERVER_PID)
    if not server or int(server) == os.getpid():
        return False
    watcher = threading.Thread(
        target=_watch, args=(int(server), port, handover_s), name="lifeline", daemon=True
    )
    watcher.start()
    return True


def _watch(server: int, port: int, handover_s: float) -> None:
    while os.getppid() == server:
        time.sleep(POLL_S)
    reaper = os.getppid()
    log.warning("api.server_gone server_pid=%s: serving until a successor listens", server)
    deadline = time.monotonic() + handover_s
    while time.monotonic() < deadline and not successor_listens(port, reaper):
        time.sleep(POLL_S)
    log.warning("api.worker_stopping port=%s: its server is gone", port)
    os.kill(os.getpid(), signal.SIGTERM)


def successor_listens(port: int, reaper: int) -> bool:
    """Whether a process that is no orphan (its parent is not ``reaper``) listens on ``port``."""
    for holder in ports.holders(port):
        try:
            if psutil.Process(holder.pid).ppid() != reaper:
                return True
        except psutil.Error:
            continue
    return False


def handing_over(holder: ports.Holder, title: str) -> bool:
    """Whether ``holder`` is an orphaned worker of an earlier server titled ``title``: it
    holds the port only until its successor (the server starting now) listens."""
    if not re.fullmatch(rf"{re.escape(title)} worker-\d+", holder.command.strip()):
        return False
    try:
        parent = psutil.Process(holder.pid).parent()
        return parent is None or " ".join(parent.cmdline()).strip() != title
    except psutil.Error:
        return True
