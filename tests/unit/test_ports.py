"""A taken port is refused with a message naming the port, the setting and the holder."""

from __future__ import annotations

import os
import socket

import pytest

from core.serve import ports


@pytest.fixture
def listener():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_free_port_is_free() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert ports.is_free("127.0.0.1", port)
    ports.refuse_if_taken("API", "CLICKSTREAM_API_PORT", "127.0.0.1", port)


def test_the_holder_of_a_taken_port_is_named(listener: int) -> None:
    assert not ports.is_free("127.0.0.1", listener)
    holders = ports.holders(listener)
    assert [holder.pid for holder in holders] == [os.getpid()]
    with pytest.raises(ports.PortTakenError) as refused:
        ports.refuse_if_taken("API", "CLICKSTREAM_API_PORT", "127.0.0.1", listener)
    message = str(refused.value)
    assert f"127.0.0.1:{listener}" in message
    assert f"pid {os.getpid()}" in message
    assert "CLICKSTREAM_API_PORT" in message


def test_port_zero_is_never_taken() -> None:
    ports.refuse_if_taken("ETL metrics", "CLICKSTREAM_ETL_METRICS_PORT", "127.0.0.1", 0)


def test_an_unseen_holder_is_said_to_be_unseen() -> None:
    message = ports.taken_message("API", "CLICKSTREAM_API_PORT", "0.0.0.0", 8000, [])
    assert message == (
        "API port 0.0.0.0:8000 is already taken by a process this user cannot see: stop it, "
        "or set CLICKSTREAM_API_PORT to a free port"
    )


def test_a_port_freed_while_waiting_is_taken(listener: int) -> None:
    import threading

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        threading.Timer(0.3, sock.close).start()
        ports.refuse_if_taken("API", "CLICKSTREAM_API_PORT", "127.0.0.1", port, wait_s=10)
    with pytest.raises(ports.PortTakenError):
        ports.refuse_if_taken("API", "CLICKSTREAM_API_PORT", "127.0.0.1", listener, wait_s=0.3)
