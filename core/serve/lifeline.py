"""Workers that die with their server: Linux's parent-death signal, asked for by each worker.

A ``kill -9`` of the server's main process gives its workers no chance to be told; without
this they go on serving the port as orphans. ``prctl(PR_SET_PDEATHSIG)`` makes the kernel
send the worker a signal when the *thread* that forked it exits: granian and gunicorn both
fork their workers from the main thread of the main process, so that thread's end is the
process's end. :func:`follow_server` is called in each worker (``core/serve/wsgi.py`` for
granian, gunicorn's ``post_fork`` hook); the server exports its pid first (:func:`export`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

#: The variable carrying the server's pid to its workers (set by :func:`export`); not a
#: CLICKSTREAM_* name, which would read as a setting (and be replaced by a reload).
SERVER_PID = "PARENT_SERVER_PID"
#: From <linux/prctl.h>.
PR_SET_PDEATHSIG = 1
#: SIGTERM rather than SIGKILL: the worker finishes the requests it has, then exits.
DEATH_SIGNAL = signal.SIGTERM


def export() -> None:
    """In the server's main process: tell the workers it will fork whose children they are."""
    os.environ[SERVER_PID] = str(os.getpid())


def follow_server() -> bool:
    """In a worker: receive :data:`DEATH_SIGNAL` when the server dies; whether it was asked.

    Nothing to do outside a worker (no exported pid, or this is the server itself) or off
    Linux. A server already gone by the time the worker asks (the signal would never come)
    ends the worker now.
    """
    server = os.environ.get(SERVER_PID)
    if not server or int(server) == os.getpid() or not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(DEATH_SIGNAL), 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_PDEATHSIG): {os.strerror(error)}")
    if os.getppid() != int(server):
        os.kill(os.getpid(), DEATH_SIGNAL)
    return True
