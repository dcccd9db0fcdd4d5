"""A bounded, append-only disk spool: events Kafka did not acknowledge wait here to be replayed.

One directory per process, locked with ``flock`` while the process lives, holding numbered
segment files of framed records and a cursor naming the first record not yet replayed.
The lock dies with the process (even on ``kill -9``), which is how another process knows
a directory is orphaned and may adopt it; a new directory's lock file appears already
locked, so an adopter never mistakes it for an orphan. See docs/reliability.md.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import struct
import threading
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.config import SpoolSettings

log = logging.getLogger(__name__)

#: Each record is framed as: body length, CRC-32 of the body, then the body.
HEADER = struct.Struct(">II")
#: The body starts with the lengths of the topic and the key; the value takes the rest.
LENGTHS = struct.Struct(">HH")
#: A segment past this size is closed and a new one started, so replayed data can be deleted.
SEGMENT_BYTES = 4 * 1024 * 1024
#: Most bytes one read hands to the replayer.
READ_BYTES = 1024 * 1024
LOCK_FILE = "lock"
CURSOR_FILE = "cursor"
SUFFIX = ".seg"


class SpoolFullError(Exception):
    """The spool holds ``max_bytes`` of events already: the event is refused, never dropped."""


class SpoolLockedError(OSError):
    """Another live process owns this spool directory (or is removing it): like any other
    failure to write the spool, an ``OSError``, which the client sees as a 503."""


@dataclass(frozen=True)
class Record:
    """One spooled Kafka message."""

    topic: str
    key: str
    value: bytes


@dataclass(frozen=True, order=True)
class Position:
    """Where a record ends: a segment number and a byte offset in it."""

    segment: int
    offset: int


def encode(record: Record) -> bytes:
    topic, key = record.topic.encode(), record.key.encode()
    body = LENGTHS.pack(len(topic), len(key)) + topic + key + record.value
    return HEADER.pack(len(body), zlib.crc32(body)) + body


def decode(data: bytes, start: int = 0) -> tuple[list[tuple[Record, int]], int]:
    """Complete, intact records of ``data`` from ``start``, each with its end; and where they stop.

    A partial or corrupt record ends the scan: it is the tail of a write that a crash
    interrupted, which never got its acknowledgement.
    """
    records: list[tuple[Record, int]] = []
    offset = start
    while offset + HEADER.size <= len(data):
        length, crc = HEADER.unpack_from(data, offset)
        body_start = offset + HEADER.size
        body = data[body_start : body_start + length]
        if len(body) < length or zlib.crc32(body) != crc or length < LENGTHS.size:
            break
        topic_length, key_length = LENGTHS.unpack_from(body)
        key_start = LENGTHS.size + topic_length
        value_start = key_start + key_length
        record = Record(
            body[LENGTHS.size : key_start].decode(),
            body[key_start:value_start].decode(),
            bytes(body[value_start:]),
        )
        offset = body_start + length
        records.append((record, offset))
    return records, offset


class Spool:
    """One spool directory, owned by this process until :meth:`close`.

    ``fsync=True``: :meth:`append` returns once the records are on disk (writers that
    arrive together share one ``fsync``, a group commit). ``fsync=False``: once the
    operating system has them, which survives the death of the process but not of the machine.
    """

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        fsync: bool,
        segment_bytes: int = SEGMENT_BYTES,
        *,
        adopting: bool = False,
    ) -> None:
        """``adopting``: take over an existing directory of a dead process, never create one."""
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._lock_fd = _take_lock(self.directory, create=not adopting)
        try:
            self._lock = threading.Lock()
            self._sync_lock = threading.Lock()
            self._appends = 0
            self._synced = 0
            self._cursor = self._read_cursor()
            self._events = 0
            self._pending_bytes = 0
            self._load()
        except BaseException:
            os.close(self._lock_fd)
            raise

    # --- state on disk ---------------------------------------------------------------------

    def _segment_path(self, number: int) -> Path:
        return self.directory / f"{number:012d}{SUFFIX}"

    def _segments(self) -> list[int]:
        return sorted(int(path.stem) for path in self.directory.glob(f"*{SUFFIX}"))

    def _read_cursor(self) -> Position:
        try:
            segment, offset = (self.directory / CURSOR_FILE).read_text().split()
            return Position(int(segment), int(offset))
        except (OSError, ValueError):
            return Position(0, 0)

    def _write_cursor(self) -> None:
        # Not fsynced: a cursor lost with the machine only means re-sending, never losing.
        temporary = self.directory / f"{CURSOR_FILE}.tmp"
        temporary.write_text(f"{self._cursor.segment} {self._cursor.offset}\n")
        os.replace(temporary, self.directory / CURSOR_FILE)

    def _load(self) -> None:
        """Count what waits, cut a torn tail off the last segment and open it for appending."""
        segments = [n for n in self._segments() if n >= self._cursor.segment]
        for number in self._segments():
            if number < self._cursor.segment:
                self._segment_path(number).unlink()
        if not segments:
            self._cursor = Position(max(self._cursor.segment, 1), 0)
            segments = [self._cursor.segment]
            self._segment_path(segments[0]).touch()
        if self._cursor.segment < segments[0]:
            self._cursor = Position(segments[0], 0)
        for number in segments:
            data = self._segment_path(number).read_bytes()
            start = min(self._cursor.offset, len(data)) if number == self._cursor.segment else 0
            records, end = decode(data, start)
            self._events += len(records)
            self._pending_bytes += end - start
            if end < len(data):
                log.warning(
                    "spool.torn_tail dir=%s segment=%d kept=%d dropped_bytes=%d",
                    self.directory,
                    number,
                    end,
                    len(data) - end,
                )
                os.truncate(self._segment_path(number), end)
        self._active = segments[-1]
        self._fd = os.open(self._segment_path(self._active), os.O_WRONLY | os.O_APPEND)
        self._active_size = os.fstat(self._fd).st_size

    # --- writing ---------------------------------------------------------------------------

    def append(self, records: list[Record]) -> None:
        """Store ``records`` together or none: raises :class:`SpoolFullError` or ``OSError``."""
        data = b"".join(encode(record) for record in records)
        with self._lock:
            if self._pending_bytes + len(data) > self.max_bytes:
                raise SpoolFullError(f"spool holds {self._pending_bytes} of {self.max_bytes} bytes")
            if self._active_size and self._active_size + len(data) > self.segment_bytes:
                self._rotate()
            written = os.write(self._fd, data)
            if written != len(data):  # a full disk: cut the partial record off again
                os.ftruncate(self._fd, self._active_size)
                raise OSError(f"short write to the spool ({written} of {len(data)} bytes)")
            self._active_size += len(data)
            self._pending_bytes += len(data)
            self._events += len(records)
            self._appends += 1
            ticket = self._appends
        if self.fsync:
            self._sync(ticket)

    def _sync(self, ticket: int) -> None:
        with self._sync_lock:
            if self._synced >= ticket:  # another writer's fsync covered this write
                return
            with self._lock:
                target = self._appends
                fd = os.dup(self._fd)  # our own handle, in case a rotation closes the other
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self._synced = target

    def _rotate(self) -> None:
        if self.fsync:
            os.fsync(self._fd)
        os.close(self._fd)
        self._active += 1
        self._fd = os.open(
            self._segment_path(self._active), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
        )
        self._active_size = 0
        if self.fsync:  # the new file's name must survive a power cut too
            directory = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    # --- replaying -------------------------------------------------------------------------

    def read(self, limit: int) -> list[tuple[Record, Position]]:
        """Up to ``limit`` of the oldest records not yet committed, each with its end position."""
        with self._lock:
            cursor, active, active_size = self._cursor, self._active, self._active_size
        records: list[tuple[Record, Position]] = []
        segment, offset = cursor.segment, cursor.offset
        while len(records) < limit and segment <= active:
            end = active_size if segment == active else self._size(segment)
            found = self._read_at(segment, offset, end) if offset < end else []
            if not found:
                if segment == active:
                    break
                if offset < end:
                    log.error(
                        "spool.corrupt dir=%s segment=%d offset=%d", self.directory, segment, offset
                    )
                segment, offset = segment + 1, 0
                continue
            for record, stop in found[: limit - len(records)]:
                records.append((record, Position(segment, offset + stop)))
            offset = records[-1][1].offset
        return records

    def _read_at(self, segment: int, offset: int, end: int) -> list[tuple[Record, int]]:
        with open(self._segment_path(segment), "rb") as file:
            file.seek(offset)
            data = file.read(min(READ_BYTES, end - offset))
            found, _ = decode(data)
            if not found and len(data) >= HEADER.size:  # one record larger than a read
                length, _ = HEADER.unpack_from(data)
                file.seek(offset)
                found, _ = decode(file.read(min(HEADER.size + length, end - offset)))
        return found

    def _size(self, segment: int) -> int:
        return self._segment_path(segment).stat().st_size

    def _span(self, start: Position, stop: Position) -> int:
        """Bytes from ``start`` to ``stop``, across segments."""
        if start.segment == stop.segment:
            return stop.offset - start.offset
        middle = sum(self._size(n) for n in range(start.segment + 1, stop.segment))
        return self._size(start.segment) - start.offset + middle + stop.offset

    def commit(self, position: Position, count: int) -> None:
        """``count`` records up to ``position`` were delivered: forget them."""
        with self._lock:
            self._pending_bytes -= self._span(self._cursor, position)
            self._events -= count
            done = list(range(self._cursor.segment, position.segment))
            self._cursor = position
            if position.segment == self._active and position.offset == self._active_size:
                # Empty: start a fresh segment so that every delivered one can go.
                self._rotate()
                self._cursor = Position(self._active, 0)
                done.append(position.segment)
            self._write_cursor()
        for number in done:
            self._segment_path(number).unlink(missing_ok=True)

    # --- state -----------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Events waiting to be replayed."""
        return self._events

    @property
    def pending_bytes(self) -> int:
        """Bytes of the events waiting; the spool refuses to grow past ``max_bytes``."""
        return self._pending_bytes

    def close(self, remove_if_empty: bool = False) -> None:
        """Release the directory; an empty one is deleted when asked."""
        with self._lock:
            os.close(self._fd)
            if remove_if_empty and self._events == 0:
                shutil.rmtree(self.directory, ignore_errors=True)
            os.close(self._lock_fd)


def _take_lock(directory: Path, create: bool) -> int:
    """This process's lock of ``directory``; with ``create``, created with it if it has none.

    Raises :class:`SpoolLockedError` when a live process holds it, or when the directory was
    removed (by another adopter, as an empty orphan) while this process waited for it.
    """
    path = directory / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        if not create:
            raise SpoolLockedError(str(directory)) from None
        return _create_lock(directory)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held, current = os.fstat(fd), os.stat(path)
        if (held.st_dev, held.st_ino) != (current.st_dev, current.st_ino):
            raise FileNotFoundError(path)
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        raise SpoolLockedError(str(directory)) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _create_lock(directory: Path) -> int:
    """Create ``directory``'s lock file already locked.

    Adopters only consider directories that have a lock file, so the file must appear
    locked: it is locked under another name, then linked into place (a link, unlike a
    rename, never replaces a lock file that appeared meanwhile). An adopter thus sees no
    lock file, and skips the directory, or one it cannot take.
    """
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f"{LOCK_FILE}.new"
    fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            os.link(temporary, directory / LOCK_FILE)
        except FileExistsError:
            raise SpoolLockedError(str(directory)) from None
    except BaseException:
        os.close(fd)
        raise
    finally:
        temporary.unlink(missing_ok=True)
    return fd


def adopt_orphans(root: Path, max_bytes: int, fsync: bool) -> list[Spool]:
    """Lock every spool directory under ``root`` whose process died; empty ones are deleted.

    The spools returned still hold events, oldest directory first.
    """
    adopted: list[Spool] = []
    try:
        directories = sorted(
            (path for path in Path(root).iterdir() if path.is_dir()),
            key=lambda path: path.stat().st_mtime,
        )
    except FileNotFoundError:
        return adopted
    for directory in directories:
        if not (directory / LOCK_FILE).exists():
            continue  # not a spool, or one whose owner is still creating its lock
        try:
            spool = Spool(directory, max_bytes=max_bytes, fsync=fsync, adopting=True)
        except (SpoolLockedError, FileNotFoundError):
            continue  # alive, or removed by another adopter meanwhile
        except OSError as error:
            log.warning("spool.adopt_skipped dir=%s error=%s", directory, error)
            continue
        if spool.depth:
            log.warning("spool.adopted dir=%s events=%d", directory, spool.depth)
            adopted.append(spool)
        else:
            spool.close(remove_if_empty=True)
    return adopted


#: Records one replay attempt sends together once Kafka acknowledges again.
REPLAY_BATCH = 500

Send = Callable[[list[Record]], list["Exception | None"]]


class Spools:
    """This process's spool, the orphaned spools it adopted, and the thread replaying them.

    Adopted spools are replayed first: a dead process accepted their events before this
    one accepted any. A replay stops at the first record Kafka does not acknowledge and
    starts again from it, so each spool reaches Kafka in its order. The process's own
    directory is created on its first append, and the replayer runs only while something
    waits, so a process that never spools costs nothing.
    """

    def __init__(
        self,
        settings: SpoolSettings,
        send: Send,
        count: Callable[..., None],
        *,
        largest_event_bytes: int,
        send_timeout_s: float,
    ) -> None:
        """``send`` hands records to Kafka within ``send_timeout_s``; :meth:`check` calls the
        spool full once it cannot take one more event of ``largest_event_bytes``."""
        self.pid = os.getpid()
        self._settings = settings
        self._send = send
        self._count = count
        self._largest_event_bytes = largest_event_bytes
        self._send_timeout_s = send_timeout_s
        self._root = Path(settings.dir)
        self._lock = threading.Lock()
        self._own: Spool | None = None
        self._write_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._adopted = self._adopt()
        if self._adopted:
            self._ensure_replayer()

    def _adopt(self) -> list[Spool]:
        try:
            return adopt_orphans(self._root, self._settings.max_bytes, self._settings.fsync)
        except OSError as error:
            log.error("spool.adopt_failed root=%s error=%s", self._root, error)
            return []

    @property
    def depth(self) -> int:
        """Events waiting in this process's spool and in the ones it adopted."""
        own = self._own.depth if self._own else 0
        return own + sum(spool.depth for spool in self._adopted)

    @property
    def pending_bytes(self) -> int:
        own = self._own.pending_bytes if self._own else 0
        return own + sum(spool.pending_bytes for spool in self._adopted)

    def append(self, records: list[Record]) -> None:
        """Spool ``records``; raises :class:`SpoolFullError` or ``OSError``."""
        try:
            with self._lock:
                if self._own is None:
                    self._own = Spool(
                        self._root / f"{self.pid}-{uuid.uuid4().hex[:8]}",
                        self._settings.max_bytes,
                        self._settings.fsync,
                    )
            self._own.append(records)
        except OSError as error:
            self._write_error = f"{type(error).__name__}: {error}"
            raise
        self._write_error = None
        self._ensure_replayer()

    def _ensure_replayer(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="spool-replayer", daemon=True
                )
                self._thread.start()

    def check(self) -> dict[str, object]:
        """``ok`` when the spool can take another event of the largest size the API accepts."""
        own_bytes = self._own.pending_bytes if self._own else 0
        full = self._settings.max_bytes - own_bytes < self._largest_event_bytes
        writable = self._write_error is None and _writable(self._root)
        if not writable:
            detail = f"spool unwritable: {self._write_error or self._root}"
        elif full:
            detail = "spool full"
        else:
            detail = f"{self.depth} events waiting" if self.depth else "empty"
        return {
            "ok": writable and not full,
            "detail": detail,
            "depth_events": self.depth,
            "bytes": self.pending_bytes,
            "max_bytes": self._settings.max_bytes,
        }

    def _run(self) -> None:
        while not self._stop.wait(self._settings.replay_interval_s):
            try:
                self.replay()
            except Exception:  # the thread must outlive any one bad attempt
                log.exception("spool.replay_failed")
            with self._lock:
                # Checked under the lock an append takes to start a replayer: no event
                # can be spooled between this test and the thread's end unseen.
                if not self.depth:
                    self._thread = None
                    return

    def replay(self) -> int:
        """Send what waits to Kafka, oldest first; returns how many records were delivered."""
        self._adopted = [*self._adopted, *self._adopt()]
        delivered = 0
        for spool in [*self._adopted, self._own]:
            if spool is None:
                continue
            # One record probes the broker before a whole batch fails record by record.
            limit = 1
            while spool.depth and not self._stop.is_set():
                batch = spool.read(limit)
                if not batch:
                    break
                results = self._send([record for record, _ in batch])
                sent = next((i for i, result in enumerate(results) if result), len(results))
                if sent:
                    spool.commit(batch[sent - 1][1], sent)
                    self._count(replayed=sent)
                    delivered += sent
                if sent < len(batch):
                    return delivered
                limit = REPLAY_BATCH
            if spool is not self._own and not spool.depth:
                log.info("spool.replayed dir=%s", spool.directory)
                spool.close(remove_if_empty=True)
                self._adopted = [other for other in self._adopted if other is not spool]
        return delivered

    def close(self) -> None:
        """Stop the replayer and release every directory; what still waits stays on disk."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=2 * self._send_timeout_s + 1)
        for spool in [*self._adopted, self._own]:
            if spool is not None:
                spool.close(remove_if_empty=True)


def _writable(root: Path) -> bool:
    """Whether the spool root exists, or can be created, and takes files."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(root, os.W_OK)
