"""The disk spool on a real file system: framing, order, limits, crashes, orphans and replay."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest

from core.config import Settings
from core.ingest.spool import (
    CURSOR_FILE,
    Record,
    Spool,
    SpoolFullError,
    SpoolLockedError,
    Spools,
    adopt_orphans,
    decode,
    encode,
)


def records(count: int, start: int = 0, size: int = 10) -> list[Record]:
    return [
        Record("topic", f"key{i % 3}", str(i).encode().ljust(size, b"."))
        for i in range(start, start + count)
    ]


def drain(spool: Spool, limit: int = 1000) -> list[Record]:
    """Read everything waiting and commit it, the way the replayer does."""
    out: list[Record] = []
    while batch := spool.read(limit):
        spool.commit(batch[-1][1], len(batch))
        out.extend(record for record, _ in batch)
    return out


def test_a_record_round_trips_and_a_torn_or_corrupt_tail_is_not_read() -> None:
    record = Record("events", "search_filter", "фильм".encode())
    data = encode(record) * 2
    assert [r for r, _ in decode(data)[0]] == [record, record]
    assert decode(data[:-1])[0] == decode(data[: len(data) // 2])[0]
    assert len(decode(data[:-1])[0]) == 1
    corrupt = bytearray(data)
    corrupt[-1] ^= 1
    assert len(decode(bytes(corrupt))[0]) == 1


class FsyncRecorder:
    """Wraps ``os.fsync``: for each call, the file synced and its size then; slow on purpose,
    so that an ``append`` that did not wait for its sync returns before it is recorded."""

    def __init__(self, real) -> None:
        self.real = real
        self.synced: list[tuple[int, int]] = []

    def __call__(self, fd: int) -> None:
        status = os.fstat(fd)
        threading.Event().wait(0.05)
        self.real(fd)
        self.synced.append((status.st_ino, status.st_size))


@pytest.fixture
def fsyncs(monkeypatch) -> FsyncRecorder:
    recorder = FsyncRecorder(os.fsync)
    monkeypatch.setattr(os, "fsync", recorder)
    return recorder


def _segment(spool_dir) -> os.stat_result:
    [segment] = sorted(spool_dir.glob("*.seg"))
    return segment.stat()


def test_with_fsync_append_returns_only_once_its_bytes_are_synced(tmp_path, fsyncs) -> None:
    spool = Spool(tmp_path / "s", max_bytes=10**6, fsync=True)
    for round_ in range(3):
        spool.append(records(4, start=4 * round_))
        segment = _segment(tmp_path / "s")
        assert (segment.st_ino, segment.st_size) in fsyncs.synced, "append returned unsynced"
    assert len(fsyncs.synced) == 3


def test_with_fsync_a_new_segment_and_its_name_are_synced_too(tmp_path, fsyncs) -> None:
    spool = Spool(tmp_path / "s", max_bytes=10**6, fsync=True, segment_bytes=100)
    spool.append(records(5))
    first = _segment(tmp_path / "s")
    spool.append(records(5, start=5))  # over 100 bytes: rotates to a second segment
    directory = os.stat(tmp_path / "s")
    synced_files = {inode for inode, _ in fsyncs.synced}
    assert (first.st_ino, first.st_size) in fsyncs.synced
    assert directory.st_ino in synced_files


def test_without_fsync_append_leaves_syncing_to_the_system(tmp_path, fsyncs) -> None:
    spool = Spool(tmp_path / "s", max_bytes=10**6, fsync=False, segment_bytes=100)
    spool.append(records(5))
    spool.append(records(5, start=5))
    assert fsyncs.synced == []
    assert drain(spool) == records(10)


@pytest.mark.parametrize("fsync", [True, False])
def test_records_come_back_in_order_across_segments(tmp_path, fsync) -> None:
    spool = Spool(tmp_path / "s", max_bytes=10**6, fsync=fsync, segment_bytes=200)
    for start in range(0, 50, 5):
        spool.append(records(5, start))
    assert spool.depth == 50
    assert len(list((tmp_path / "s").glob("*.seg"))) > 5

    assert drain(spool, limit=7) == records(50)
    assert (spool.depth, spool.pending_bytes) == (0, 0)
    assert len(list((tmp_path / "s").glob("*.seg"))) == 1  # delivered segments are deleted


def test_a_full_spool_refuses_whole_appends_and_takes_more_once_drained(tmp_path) -> None:
    one = len(encode(records(1)[0]))
    spool = Spool(tmp_path / "s", max_bytes=3 * one, fsync=True)
    spool.append(records(2))
    with pytest.raises(SpoolFullError):
        spool.append(records(2, 2))
    assert spool.depth == 2  # nothing of the refused append was written
    spool.append(records(1, 2))
    assert drain(spool) == records(3)
    spool.append(records(3, 3))
    assert drain(spool) == records(3, 3)


def test_concurrent_writers_lose_nothing(tmp_path) -> None:
    spool = Spool(tmp_path / "s", max_bytes=10**7, fsync=True, segment_bytes=4096)

    def write(worker: int) -> None:
        for i in range(50):
            spool.append([Record("t", f"w{worker}", f"{worker}-{i}".encode())])

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = drain(spool)
    assert len(got) == 200
    for worker in range(4):  # each writer's records in its own order
        mine = [r.value for r in got if r.key == f"w{worker}"]
        assert mine == [f"{worker}-{i}".encode() for i in range(50)]


def test_a_live_owner_keeps_its_directory_and_a_reopened_spool_resumes_at_the_cursor(
    tmp_path,
) -> None:
    spool = Spool(tmp_path / "s", max_bytes=10**6, fsync=True, segment_bytes=100)
    spool.append(records(10))
    with pytest.raises(SpoolLockedError):
        Spool(tmp_path / "s", max_bytes=10**6, fsync=True)
    batch = spool.read(4)
    spool.commit(batch[-1][1], 4)
    spool.close()

    reopened = Spool(tmp_path / "s", max_bytes=10**6, fsync=True, segment_bytes=100)
    assert reopened.depth == 6
    assert drain(reopened) == records(6, 4)
    assert (tmp_path / "s" / CURSOR_FILE).exists()


def test_a_torn_tail_is_cut_and_appending_continues_after_it(tmp_path) -> None:
    spool = Spool(tmp_path / "s", max_bytes=10**6, fsync=True)
    spool.append(records(3))
    spool.close()
    [segment] = (tmp_path / "s").glob("*.seg")
    with open(segment, "ab") as file:
        file.write(encode(records(1, 3)[0])[:-4])  # a write cut short by a crash

    reopened = Spool(tmp_path / "s", max_bytes=10**6, fsync=True)
    reopened.append(records(1, 4))
    assert drain(reopened) == records(3) + records(1, 4)


def test_the_spool_of_a_killed_process_is_adopted_and_only_then(tmp_path) -> None:
    root = tmp_path / "spools"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from core.ingest.spool import Record, Spool
        spool = Spool({str(root / "dead")!r}, max_bytes=10**6, fsync=True)
        spool.append([Record("t", "k", b"%d" % i) for i in range(5)])
        print("spooled", flush=True)
        if sys.argv[1] == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        sys.stdin.read()
        """
    )
    alive = subprocess.Popen(
        [sys.executable, "-c", script, "wait"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert alive.stdout.readline().strip() == "spooled"
        assert adopt_orphans(root, max_bytes=10**6, fsync=True) == []  # its owner lives
    finally:
        alive.communicate("")

    [orphan] = adopt_orphans(root, max_bytes=10**6, fsync=True)
    assert [r.value for r in drain(orphan)] == [b"%d" % i for i in range(5)]
    orphan.close(remove_if_empty=True)
    assert not (root / "dead").exists()

    killed = subprocess.run([sys.executable, "-c", script.replace("dead", "killed"), "die"])
    assert killed.returncode == -9
    [orphan] = adopt_orphans(root, max_bytes=10**6, fsync=True)
    assert orphan.depth == 5


class FlakyKafka:
    """Acknowledges while ``up``; records what it was sent, in order."""

    def __init__(self) -> None:
        self.up = False
        self.sent: list[Record] = []

    def send(self, batch: list[Record]) -> list[Exception | None]:
        if not self.up:
            return [RuntimeError("down")] * len(batch)
        self.sent.extend(batch)
        return [None] * len(batch)


def test_orphans_replay_before_the_process_own_spool(tmp_path) -> None:
    settings = Settings(spool_dir=str(tmp_path), spool_replay_interval_s=3600)
    orphan = Spool(tmp_path / "old", max_bytes=10**6, fsync=False)
    orphan.append(records(3))
    orphan.close()
    kafka, counts = FlakyKafka(), []
    spools = Spools(settings, kafka.send, lambda **c: counts.append(c))
    try:
        assert spools.depth == 3
        spools.append(records(2, 3))
        assert spools.replay() == 0  # Kafka is down: nothing leaves, nothing is lost
        assert spools.depth == 5
        kafka.up = True
        assert spools.replay() == 5
        assert kafka.sent == records(5)
        assert spools.depth == 0
        assert not (tmp_path / "old").exists()
        assert sum(c["replayed"] for c in counts) == 5
        assert spools.check()["ok"] is True
    finally:
        spools.close()
