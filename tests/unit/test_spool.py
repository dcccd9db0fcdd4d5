"""The disk spool on a real file system: framing, order, limits, crashes, orphans and replay."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from core.config import Settings
from core.ingest.spool import (
    CURSOR_FILE,
    READ_BYTES,
    Record,
    Spool,
    SpoolFullError,
    SpoolLockedError,
    Spools,
    adopt_orphans,
    decode,
    encode,
)


def spools_of(settings: Settings, send, count) -> Spools:
    """The spools the publisher of ``settings`` would open."""
    return Spools(
        settings.spool,
        send,
        count,
        largest_event_bytes=settings.api.max_body_bytes,
        send_timeout_s=settings.kafka.ack_timeout_s,
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
    empty = Record("", "", b"")
    assert decode(encode(empty) * 2) == ([(empty, 12), (empty, 24)], 24)


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
    [left] = (tmp_path / "s").glob("*.seg")  # delivered segments are deleted
    assert left.stat().st_size == 0


def test_a_full_spool_refuses_whole_appends_and_takes_more_once_drained(tmp_path) -> None:
    one = len(encode(records(1)[0]))
    spool = Spool(tmp_path / "s", max_bytes=3 * one, fsync=True)
    spool.append(records(2))
    with pytest.raises(SpoolFullError, match=f"holds {2 * one} of {3 * one} bytes"):
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
    """Acknowledges while ``up`` (only ``accept`` more records, if set); records the size of
    every batch it was sent and, in order, what it acknowledged."""

    def __init__(self) -> None:
        self.up = False
        self.accept: int | None = None
        self.batches: list[int] = []
        self.sent: list[Record] = []

    def send(self, batch: list[Record]) -> list[Exception | None]:
        self.batches.append(len(batch))
        taken = 0 if not self.up else len(batch) if self.accept is None else self.accept
        taken = min(taken, len(batch))
        if self.accept is not None and self.up:
            self.accept -= taken
        self.sent.extend(batch[:taken])
        return [None] * taken + [RuntimeError("down")] * (len(batch) - taken)


def test_orphans_replay_before_the_process_own_spool(tmp_path) -> None:
    settings = Settings.of(spool_dir=str(tmp_path), spool_replay_interval_s=3600)
    orphan = Spool(tmp_path / "old", max_bytes=10**6, fsync=False)
    orphan.append(records(3))
    orphan.close()
    kafka, counts = FlakyKafka(), []
    spools = spools_of(settings, kafka.send, lambda **c: counts.append(c))
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


def eventually(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def segment_sizes(directory) -> list[int]:
    return [path.stat().st_size for path in sorted(directory.glob("*.seg"))]


def test_empty_records_and_one_larger_than_a_read_come_back(tmp_path) -> None:
    big = Record("topic", "key", b"x" * (READ_BYTES + 100))
    empty = Record("", "", b"")
    spool = Spool(tmp_path / "s", max_bytes=10**7, fsync=False)
    spool.append([empty, big, empty])
    assert drain(spool) == [empty, big, empty]


def test_reads_stop_at_the_limit_and_skip_nothing_across_segments_of_different_sizes(
    tmp_path,
) -> None:
    spool = Spool(tmp_path / "s", max_bytes=10**6, fsync=False, segment_bytes=200)
    spool.append(records(2, size=60))
    spool.append(records(5, 2))
    spool.append(records(1, 7, size=60))
    assert segment_sizes(tmp_path / "s") == [162, 155, 81]

    batch = spool.read(4)
    assert [record for record, _ in batch] == records(2, size=60) + records(2, 2)
    assert drain(spool) == records(2, size=60) + records(5, 2) + records(1, 7, size=60)


def test_a_reopened_spool_counts_what_waits_after_a_cursor_inside_a_segment(tmp_path) -> None:
    spool = Spool(tmp_path / "s", max_bytes=10**6, fsync=False, segment_bytes=200)
    spool.append(records(2, size=60))
    spool.append(records(5, 2))
    spool.append(records(1, 7, size=60))
    first_segment = sorted((tmp_path / "s").glob("*.seg"))[0]
    delivered = first_segment.read_bytes()
    batch = spool.read(3)
    spool.commit(batch[-1][1], 3)
    assert segment_sizes(tmp_path / "s") == [155, 81]
    spool.close()
    first_segment.write_bytes(delivered)  # died before deleting the delivered segment

    reopened = Spool(tmp_path / "s", max_bytes=10**6, fsync=False, segment_bytes=200)
    assert (reopened.depth, reopened.pending_bytes) == (5, 4 * 31 + 81)
    assert segment_sizes(tmp_path / "s") == [155, 81]
    assert drain(reopened) == records(4, 3) + records(1, 7, size=60)


def test_a_segment_takes_appends_until_exactly_full(tmp_path) -> None:
    one = len(encode(records(1)[0]))
    spool = Spool(tmp_path / "s", max_bytes=10**6, fsync=False, segment_bytes=2 * one)
    spool.append(records(1))
    spool.append(records(1, 1))
    assert segment_sizes(tmp_path / "s") == [2 * one]
    spool.append(records(1, 2))
    assert segment_sizes(tmp_path / "s") == [2 * one, one]


def test_a_spool_delivered_in_one_read_keeps_no_data_on_disk(tmp_path) -> None:
    spool = Spool(tmp_path / "s", max_bytes=10**6, fsync=False, segment_bytes=100)
    for start in range(0, 15, 5):
        spool.append(records(5, start))
    assert len(segment_sizes(tmp_path / "s")) == 3
    assert drain(spool) == records(15)
    assert segment_sizes(tmp_path / "s") == [0]


def test_writers_that_arrive_during_an_fsync_share_the_next_one(tmp_path, monkeypatch) -> None:
    spool = Spool(tmp_path / "s", max_bytes=10**6, fsync=True)
    real_fsync, calls = os.fsync, []
    gate, syncing = threading.Event(), threading.Event()

    def fsync(fd: int) -> None:
        calls.append(fd)
        if not gate.is_set():
            syncing.set()
            gate.wait(5)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    for round_ in range(6):
        gate.clear()
        syncing.clear()
        calls.clear()
        first = threading.Thread(target=spool.append, args=(records(1),))
        first.start()
        assert syncing.wait(5)
        writers = [threading.Thread(target=spool.append, args=(records(1),)) for _ in range(4)]
        for writer in writers:
            writer.start()
        eventually(lambda appended=5 * (round_ + 1): spool.depth == appended)
        gate.set()
        for thread in [first, *writers]:
            thread.join()
        assert len(calls) == 2, "the four waiting writers did not share one fsync"


@contextlib.contextmanager
def file_size_limit(limit: int):
    """Writes past ``limit`` bytes of a file are cut short, as on a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_short_write_is_cut_off_refused_whole_and_reported_until_a_write_succeeds(
    tmp_path,
) -> None:
    settings = Settings.of(spool_dir=str(tmp_path), spool_replay_interval_s=3600)
    kafka = FlakyKafka()
    spools = spools_of(settings, kafka.send, lambda **c: None)
    try:
        spools.append(records(1))
        [directory] = tmp_path.iterdir()
        limit = file_size_limit(segment_sizes(directory)[0] + 10)
        with limit, pytest.raises(OSError, match="short write"):
            spools.append(records(3, 1))
        assert segment_sizes(directory) == [len(encode(records(1)[0]))]
        health = spools.check()
        assert health["ok"] is False
        assert "OSError: short write" in health["detail"]

        spools.append(records(1, 4))
        assert spools.check()["ok"] is True
        kafka.up = True
        assert spools.replay() == 2
        assert kafka.sent == records(1) + records(1, 4)
    finally:
        spools.close()


def test_the_process_spool_is_named_after_the_process_and_fsynced_as_configured(
    tmp_path, fsyncs
) -> None:
    settings = Settings.of(spool_dir=str(tmp_path), spool_fsync=True, spool_replay_interval_s=3600)
    spools = spools_of(settings, FlakyKafka().send, lambda **c: None)
    try:
        spools.append(records(2))
        [directory] = tmp_path.iterdir()
        assert directory.name.startswith(f"{os.getpid()}-")
        segment = _segment(directory)
        assert (segment.st_ino, segment.st_size) in fsyncs.synced
    finally:
        spools.close()


def test_the_health_check_says_whether_one_more_largest_event_fits(tmp_path) -> None:
    one = len(encode(records(1)[0]))
    root = tmp_path / "not" / "yet" / "made"
    settings = Settings.of(
        spool_dir=str(root), spool_max_bytes=100, max_body_bytes=100, spool_replay_interval_s=3600
    )
    spools = spools_of(settings, FlakyKafka().send, lambda **c: None)
    try:
        assert spools.check() == {
            "ok": True,
            "detail": "empty",
            "depth_events": 0,
            "bytes": 0,
            "max_bytes": 100,
        }
        spools.append(records(1))
        assert spools.check() == {
            "ok": False,
            "detail": "spool full",
            "depth_events": 1,
            "bytes": one,
            "max_bytes": 100,
        }
    finally:
        spools.close()

    roomy = spools_of(settings.replace(spool_max_bytes=10**6), FlakyKafka().send, lambda **c: None)
    try:
        roomy.append(records(2))
        assert roomy.check()["ok"] is True
        assert roomy.check()["detail"] == "3 events waiting"  # 1 adopted, 2 its own
    finally:
        roomy.close()


def test_the_health_check_names_a_spool_root_that_cannot_be_made(tmp_path) -> None:
    (tmp_path / "file").write_text("")
    root = tmp_path / "file" / "spool"
    spools = spools_of(Settings.of(spool_dir=str(root)), FlakyKafka().send, lambda **c: None)
    try:
        health = spools.check()
        assert (health["ok"], health["detail"]) == (False, f"spool unwritable: {root}")
        with pytest.raises(OSError):
            spools.append(records(1))
        health = spools.check()
        assert health["ok"] is False
        assert health["detail"].startswith("spool unwritable: NotADirectoryError: ")
    finally:
        spools.close()


def test_orphans_are_adopted_oldest_first_past_directories_that_are_not_orphans(
    tmp_path,
) -> None:
    for name in ["a-newer", "b-oldest", "e-empty"]:
        spool = Spool(tmp_path / name, max_bytes=10**6, fsync=False)
        if name != "e-empty":
            spool.append(records(1))
        spool.close()
    (tmp_path / "c-not-a-spool").mkdir()
    live = Spool(tmp_path / "d-live", max_bytes=10**6, fsync=False)
    live.append(records(1))
    now = time.time()
    ages = {"a-newer": 10, "b-oldest": 30, "c-not-a-spool": 40, "d-live": 35, "e-empty": 20}
    for name, age in ages.items():
        os.utime(tmp_path / name, (now - age, now - age))

    adopted = adopt_orphans(tmp_path, max_bytes=10**6, fsync=False)
    try:
        assert [spool.directory.name for spool in adopted] == ["b-oldest", "a-newer"]
        assert sorted(path.name for path in tmp_path.iterdir()) == [
            "a-newer",
            "b-oldest",
            "c-not-a-spool",
            "d-live",
        ]
    finally:
        for spool in [*adopted, live]:
            spool.close()


def test_closing_deletes_an_empty_spool_only_when_asked_and_never_one_with_events(
    tmp_path,
) -> None:
    Spool(tmp_path / "empty", max_bytes=10**6, fsync=False).close()
    assert (tmp_path / "empty").is_dir()

    waiting = Spool(tmp_path / "waiting", max_bytes=10**6, fsync=False)
    waiting.append(records(2))
    waiting.close(remove_if_empty=True)
    [orphan] = adopt_orphans(tmp_path, max_bytes=10**6, fsync=False)
    assert drain(orphan) == records(2)
    orphan.close()

    removed = Spool(tmp_path / "removed", max_bytes=10**6, fsync=False)
    shutil.rmtree(tmp_path / "removed")  # an operator cleaned up under the live process
    removed.close(remove_if_empty=True)


def test_closing_the_spools_keeps_what_waits_for_the_next_process_and_removes_the_rest(
    tmp_path,
) -> None:
    settings = Settings.of(spool_dir=str(tmp_path), spool_replay_interval_s=3600)
    kafka = FlakyKafka()
    spools = spools_of(settings, kafka.send, lambda **c: None)
    spools.append(records(2))
    spools.close()
    [orphan] = adopt_orphans(tmp_path, max_bytes=10**6, fsync=False)
    assert drain(orphan) == records(2)
    orphan.close(remove_if_empty=True)

    spools = spools_of(settings, kafka.send, lambda **c: None)
    spools.append(records(1))
    kafka.up = True
    assert spools.replay() == 1
    spools.close()
    assert list(tmp_path.iterdir()) == []


def test_a_replay_probes_with_one_record_and_commits_exactly_what_kafka_acknowledged(
    tmp_path,
) -> None:
    one = len(encode(records(1)[0]))
    settings = Settings.of(spool_dir=str(tmp_path), spool_replay_interval_s=3600)
    kafka = FlakyKafka()
    spools = spools_of(settings, kafka.send, lambda **c: None)
    try:
        spools.append(records(6))
        assert spools.replay() == 0
        assert kafka.batches == [1]
        kafka.up, kafka.accept = True, 3
        assert spools.replay() == 3  # the probe, then 2 of a batch of 5
        assert kafka.batches == [1, 1, 5]
        assert (spools.depth, spools.pending_bytes) == (3, 3 * one)
        kafka.accept = None
        assert spools.replay() == 3
        assert kafka.sent == records(6)
    finally:
        spools.close()


def test_an_orphan_damaged_after_adoption_does_not_hold_back_the_process_own_events(
    tmp_path,
) -> None:
    orphan = Spool(tmp_path / "old", max_bytes=10**6, fsync=False)
    orphan.append(records(2))
    orphan.close()
    settings = Settings.of(spool_dir=str(tmp_path), spool_replay_interval_s=3600)
    kafka = FlakyKafka()
    spools = spools_of(settings, kafka.send, lambda **c: None)
    try:
        [segment] = (tmp_path / "old").glob("*.seg")
        damaged = bytearray(segment.read_bytes())
        damaged[20] ^= 1
        segment.write_bytes(damaged)
        spools.append(records(1, 2))
        kafka.up = True
        assert spools.replay() == 1
        assert kafka.sent == records(1, 2)
    finally:
        spools.close()


def started_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread not in before]


def test_one_replayer_runs_while_events_wait_and_delivers_them_once_kafka_is_back(
    tmp_path,
) -> None:
    settings = Settings.of(spool_dir=str(tmp_path), spool_replay_interval_s=0.01)
    kafka = FlakyKafka()
    before = set(threading.enumerate())
    spools = spools_of(settings, kafka.send, lambda **c: None)
    try:
        assert started_threads(before) == []
        spools.append(records(2))
        spools.append(records(2, 2))
        eventually(lambda: len(kafka.batches) >= 3)  # it keeps trying while Kafka is down
        [replayer] = started_threads(before)
        assert replayer.daemon, "a replayer retrying forever would keep the process from exiting"
        kafka.up = True
        eventually(lambda: spools.depth == 0 and not started_threads(before))
        assert kafka.sent == records(4)
        spools.append(records(1, 4))
        eventually(lambda: spools.depth == 0 and not started_threads(before))
        assert kafka.sent == records(5)
    finally:
        spools.close()


class StuckKafka(FlakyKafka):
    """Up, but its first send waits for ``release`` (or 5 s)."""

    def __init__(self) -> None:
        super().__init__()
        self.up = True
        self.sending = threading.Event()
        self.release = threading.Event()

    def send(self, batch: list[Record]) -> list[Exception | None]:
        if not self.sending.is_set():
            self.sending.set()
            self.release.wait(5)
        return super().send(batch)


def test_close_waits_for_the_send_in_flight_then_sends_nothing_more(tmp_path) -> None:
    settings = Settings.of(
        spool_dir=str(tmp_path), spool_replay_interval_s=0.01, kafka_ack_timeout_s=0.05
    )
    kafka = StuckKafka()
    spools = spools_of(settings, kafka.send, lambda **c: None)
    spools.append(records(3))
    assert kafka.sending.wait(5)
    closing = threading.Thread(target=spools.close)
    closing.start()
    try:
        closing.join(0.2)
        assert closing.is_alive(), "close returned while a replay was in flight"
    finally:
        kafka.release.set()
    closing.join(5)
    assert not closing.is_alive()
    assert kafka.sent == records(1)
    [orphan] = adopt_orphans(tmp_path, max_bytes=10**6, fsync=False)
    assert drain(orphan) == records(2, 1)


def test_close_gives_up_on_a_send_that_does_not_return(tmp_path) -> None:
    settings = Settings.of(
        spool_dir=str(tmp_path), spool_replay_interval_s=0.01, kafka_ack_timeout_s=0.05
    )
    kafka = StuckKafka()
    before = set(threading.enumerate())
    spools = spools_of(settings, kafka.send, lambda **c: None)
    try:
        spools.append(records(1))
        assert kafka.sending.wait(5)
        closing = threading.Thread(target=spools.close)
        closing.start()
        closing.join(4)
        assert not closing.is_alive(), "close waits for a stuck send"
    finally:
        kafka.release.set()
        # The released replayer ends on its own; let it, so it logs nothing after the test.
        eventually(lambda: started_threads(before) == [])
