"""A worker asking for its server's death signal: a real fork, a real parent killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from core.serve import lifeline


def test_outside_a_worker_nothing_is_asked(monkeypatch) -> None:
    monkeypatch.delenv(lifeline.SERVER_PID, raising=False)
    assert lifeline.follow_server() is False
    monkeypatch.setenv(lifeline.SERVER_PID, str(os.getpid()))
    assert lifeline.follow_server() is False


def test_a_worker_dies_when_its_server_is_killed(tmp_path) -> None:
    """The server (a child of this test) forks a worker that follows it, then is SIGKILLed:
    the worker, reparented, gets SIGTERM from the kernel and exits."""
    pid_file = tmp_path / "worker.pid"
    server = textwrap.dedent(
        f"""
        import os, time
        from core.serve import lifeline
        lifeline.export()
        if os.fork() == 0:
            assert lifeline.follow_server()
            open({str(pid_file)!r}, "w").write(str(os.getpid()))
            time.sleep(60)
            os._exit(0)
        time.sleep(60)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", server])
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the worker never started"
        time.sleep(0.05)
    worker = int(pid_file.read_text())
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    while time.monotonic() < deadline:
        if not _alive(worker):
            return
        time.sleep(0.05)
    os.kill(worker, signal.SIGKILL)
    raise AssertionError(f"worker {worker} outlived its server")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False
