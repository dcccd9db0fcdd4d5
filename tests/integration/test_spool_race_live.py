"""A new spool directory never loses its lock to a process adopting orphans (issue 13,
item 10), with Kafka unreachable so that events are spooled, and a real adopter process.

Another worker adopting orphans could take a new directory's lock between its creation and
its owner's ``flock``: the owner got ``SpoolLockedError``, which is no ``OSError``, so the
client got a 500 (and the adopter deleted the "empty orphan"). The adopter here runs exactly
in that window, deterministically: the test's ``flock`` starts it and lets it lock first.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

import core.ingest.spool as spool_module
from core.api import create_app
from core.config import PROJECT_ROOT, Settings
from tests.reliability import search_event
from tests.servers import subprocess_env

pytestmark = pytest.mark.integration

#: Adopts the orphans under argv[1], telling argv[2] once it holds a directory's lock and
#: holding it a second, as a slow disk would.
ADOPTER = """
import sys, time
from pathlib import Path
from types import SimpleNamespace
from core.ingest import spool

root, locked = Path(sys.argv[1]), Path(sys.argv[2])
load = spool.Spool._load

def slow_load(self):
    locked.write_text(str(self.directory))
    time.sleep(1.0)
    load(self)

spool.Spool._load = slow_load
print(len(spool.adopt_orphans(root, max_bytes=1 << 20, fsync=False)))
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def kafka_down(live_settings: Settings, tmp_path: Path) -> Settings:
    return live_settings.replace(
        kafka_bootstrap=f"127.0.0.1:{closed_port()}",
        kafka_ack_timeout_s=0.5,
        spool_dir=str(tmp_path / "spool"),
        spool_fsync=False,
    )


def test_an_adopter_cannot_take_a_new_spools_lock(kafka_down, tmp_path, monkeypatch):
    root, locked = Path(kafka_down.spool.dir), tmp_path / "adopter-locked"
    real_flock = fcntl.flock
    adopters: list[subprocess.Popen] = []

    def flock(fd: int, operation: int) -> None:
        if not adopters and os.readlink(f"/proc/self/fd/{fd}").startswith(str(root)):
            adopters.append(
                subprocess.Popen(
                    [sys.executable, "-c", ADOPTER, str(root), str(locked)],
                    cwd=PROJECT_ROOT,
                    env=subprocess_env(kafka_down),
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
            deadline = time.monotonic() + 30
            while not locked.exists() and adopters[0].poll() is None:
                assert time.monotonic() < deadline, "the adopter neither locked nor ended"
                time.sleep(0.01)
        real_flock(fd, operation)

    monkeypatch.setattr(spool_module.fcntl, "flock", flock)
    app = create_app(kafka_down)
    try:
        answer = app.test_client().post("/api/v1/events", json=search_event(1))
        (adopter,) = adopters
        out, _ = adopter.communicate(timeout=30)
        assert answer.status_code == 202, answer.json
        assert out.strip() == "0"  # it adopted nothing
        assert not locked.exists()  # and never held our lock
        publisher = app.extensions["clickstream.pipeline"].publisher
        assert publisher.stats()["spool_depth_events"] == 1
        (own,) = [path for path in root.iterdir() if path.is_dir()]
        assert any(own.glob("*.seg"))  # still there: nobody deleted it as an empty orphan
    finally:
        app.extensions["clickstream.pipeline"].publisher.close()


def test_a_directory_another_process_holds_is_a_503_and_the_next_request_spools(
    kafka_down, monkeypatch
):
    root = Path(kafka_down.spool.dir)
    names = iter([uuid.UUID(int=0xABCD << 96), uuid.UUID(int=0xEF01 << 96)])
    # The spool's names only: the app's event ids stay random.
    monkeypatch.setattr(spool_module, "uuid", SimpleNamespace(uuid4=lambda: next(names)))
    directory = root / f"{os.getpid()}-0000abcd"
    directory.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
            str(directory / "lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    app = create_app(kafka_down)
    client = app.test_client()
    try:
        assert holder.stdout.readline().strip() == "locked"
        refused = client.post("/api/v1/events", json=search_event(1))
        assert refused.status_code == 503, refused.json
        assert refused.headers["Retry-After"] == "1"
        accepted = client.post("/api/v1/events", json=search_event(2))
        assert accepted.status_code == 202, accepted.json
    finally:
        holder.kill()
        holder.wait()
        app.extensions["clickstream.pipeline"].publisher.close()
