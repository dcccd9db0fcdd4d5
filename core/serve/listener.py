"""granian made to hand its connections over without a failed request at a reload.

Two things make a respawned worker (``make reload``, or a crashed one replaced) fail
requests in plain granian on Linux:

- each worker listens on a socket of its own (SO_REUSEPORT); when it stops, the
  connections the kernel had already queued on that socket are reset. Here the server binds
  one socket (SO_REUSEPORT still set, so a restarted server can listen beside a dead one's
  workers, core/serve/lifeline.py) and every worker accepts from it: a stopping worker only
  closes its copy, and what was queued waits for the others;
- a stopping worker closes its kept-alive connections, and a request a client sends on one
  at that moment is cut. Here the worker is told first (:data:`DRAIN_SIGNAL`) and, until it
  stops, answers every request with ``Connection: close``: clients leave its connections
  after their answer and open new ones, which the other workers take.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable

from granian import Granian
from granian.net import SocketSpec

#: Sent by the server to a worker it is about to replace.
DRAIN_SIGNAL = signal.SIGUSR1

_draining = threading.Event()


class HandingOverGranian(Granian):
    """:class:`granian.Granian`: its workers share one listening socket and drain before
    they are replaced (see the module)."""

    def _init_shared_socket(self) -> None:
        spec = SocketSpec(self.bind_addr, self.bind_port, self.backlog)
        self._shd = spec.build()
        self._sfd = self._shd.get_fd()
        self._ssp = None
        self._sso = socket.socket(fileno=self._sfd)
        self._sso.set_inheritable(True)

    def _respawn_workers(self, workers, spawn_target, target_loader, delay: float = 0):
        # One at a time, as granian does: the old worker drains while its successor starts
        # (``delay``, CLICKSTREAM_API_RESPAWN_INTERVAL_S), then granian stops it.
        for idx in workers:
            # A worker that died (its pid gone, or never started) has nothing to drain.
            with contextlib.suppress(ProcessLookupError, TypeError, AttributeError):
                os.kill(self.wrks[idx].inner.pid, DRAIN_SIGNAL)
            super()._respawn_workers([idx], spawn_target, target_loader, delay)


def drain_on_signal() -> None:
    """In a worker: from :data:`DRAIN_SIGNAL` on, :func:`closing_when_draining` closes
    every connection after its answer."""
    signal.signal(DRAIN_SIGNAL, lambda *_: _draining.set())


def closing_when_draining(app: Callable) -> Callable:
    """``app``, its answers carrying ``Connection: close`` once the worker drains."""

    def serve(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not _draining.is_set():
            return app(environ, start_response)

        def start_closing(status, headers, exc_info=None):
            return start_response(status, [*headers, ("Connection", "close")], exc_info)

        return app(environ, start_closing)

    return serve
