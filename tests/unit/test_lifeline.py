"""A worker whose server is killed: it serves on until a successor listens, then stops.
Real forks, a real SIGKILL, real listeners sharing a port with SO_REUSEPORT."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from core.serve import lifeline, ports


def test_outside_a_worker_nothing_is_watched(monkeypatch) -> None:
    monkeypatch.delenv(lifeline.SERVER_PID, raising=False)
    assert lifeline.follow_server(8000) is False
    monkeypatch.setenv(lifeline.SERVER_PID, str(os.getpid()))
    assert lifeline.follow_server(8000) is False


def shared_listener(port: int = 0) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def orphaned_worker(tmp_path, port: int, handover_s: float) -> int:
    """A server (child of this test) forks a listening worker that follows it; the server
    is then SIGKILLed. Returns the worker's pid."""
    pid_file = tmp_path / "worker.pid"
    server = textwrap.dedent(
        f"""
        import os, socket, signal, time
        from core.serve import lifeline
        lifeline.export()
        if os.fork() == 0:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("127.0.0.1", {port}))
            sock.listen()
            assert lifeline.follow_server({port}, handover_s={handover_s})
            open({str(pid_file)!r}, "w").write(str(os.getpid()))
            time.sleep(120)
            os._exit(0)
        time.sleep(120)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", server])
    wait_for(lambda: pid_file.exists() and pid_file.read_text(), "the worker starts")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return int(pid_file.read_text())


def wait_for(condition, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_an_orphan_serves_until_its_successor_listens_then_stops(tmp_path) -> None:
    with shared_listener() as probe:
        port = probe.getsockname()[1]
    worker = orphaned_worker(tmp_path, port, handover_s=60)
    try:
        time.sleep(1)
        assert alive(worker), "the orphan stopped before a successor listened"
        assert [holder.pid for holder in ports.holders(port)] == [worker]
        with shared_listener(port):
            wait_for(lambda: not alive(worker), "the orphan stops once a successor listens")
    finally:
        if alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_an_orphan_without_successor_stops_after_the_handover_time(tmp_path) -> None:
    with shared_listener() as probe:
        port = probe.getsockname()[1]
    worker = orphaned_worker(tmp_path, port, handover_s=0.5)
    try:
        wait_for(lambda: not alive(worker), "the orphan stops after its handover time")
    finally:
        if alive(worker):
            os.kill(worker, signal.SIGKILL)


@pytest.mark.parametrize(
    ("command", "welcome"),
    [
        ("clickstream-api 127.0.0.1:8000 worker-2", True),
        ("clickstream-api 127.0.0.1:8000", False),
        ("clickstream-api 127.0.0.1:8001 worker-1", False),
        ("python -m http.server 8000", False),
    ],
)
def test_only_orphaned_workers_of_the_same_server_are_welcome(command, welcome) -> None:
    """This process stands for the holder: its parent (pytest's) is no server of that title."""
    holder = ports.Holder(os.getpid(), "python", command)
    assert lifeline.handing_over(holder, "clickstream-api 127.0.0.1:8000") is welcome
