"""core/serve/listener.py: the shared listening socket and the drain before a reload."""

from __future__ import annotations

import os
import socket
import time

import pytest
from granian.constants import Interfaces

from core.serve import listener


@pytest.fixture
def draining_reset():
    yield
    listener._draining.clear()


def _answer(app) -> list:
    seen: list = []

    def start_response(status, headers, exc_info=None):
        seen.append((status, headers))

    assert list(app({}, start_response)) == [b"ok"]
    return seen[0][1]


def _plain(environ, start_response):
    start_response("202 ACCEPTED", [("Content-Type", "application/json")])
    return [b"ok"]


def test_connections_stay_open_until_the_worker_is_told_to_drain(draining_reset):
    app = listener.closing_when_draining(_plain)
    assert _answer(app) == [("Content-Type", "application/json")]
    listener.drain_on_signal()
    os.kill(os.getpid(), listener.DRAIN_SIGNAL)
    deadline = time.monotonic() + 2
    while not listener._draining.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _answer(app) == [("Content-Type", "application/json"), ("Connection", "close")]


def test_every_worker_accepts_from_the_one_socket_the_server_holds():
    server = listener.HandingOverGranian(
        "core.serve.wsgi:app", address="127.0.0.1", port=0, interface=Interfaces.WSGI
    )
    server._init_shared_socket()
    try:
        assert server._ssp is None  # no worker builds a socket of its own
        shared = server._sso
        assert shared.getsockname()[1] != 0  # bound by the server, before any worker
        assert shared.get_inheritable()
        # SO_REUSEPORT kept: a restarted server can listen beside a dead one's workers.
        assert shared.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
    finally:
        server._drop_shared_socket()
