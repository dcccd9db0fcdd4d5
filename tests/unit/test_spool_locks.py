"""Issue 13 item 10: how a spool directory's lock is taken, created and lost (no services)."""

from __future__ import annotations

import fcntl
import os

import pytest

import core.ingest.spool as spool_module
from core.ingest.spool import LOCK_FILE, Record, Spool, SpoolLockedError, adopt_orphans


def test_a_locked_spool_is_an_os_error_like_any_unwritable_spool() -> None:
    assert issubclass(SpoolLockedError, OSError)


def test_adopting_never_creates_a_directory(tmp_path) -> None:
    gone = tmp_path / "123-gone"
    with pytest.raises(SpoolLockedError):
        Spool(gone, max_bytes=1024, fsync=False, adopting=True)
    assert not gone.exists()


def test_a_lock_removed_while_waiting_for_it_is_not_taken(tmp_path, monkeypatch) -> None:
    """Another adopter deleted the directory (an empty orphan) between open and flock."""
    orphan = tmp_path / "123-orphan"
    Spool(orphan, max_bytes=1024, fsync=False).close()
    real_flock = fcntl.flock

    def flock(fd: int, operation: int) -> None:
        real_flock(fd, operation)
        (orphan / LOCK_FILE).unlink()
        (orphan / LOCK_FILE).touch()  # a new directory's lock, under the same name

    monkeypatch.setattr(spool_module.fcntl, "flock", flock)
    with pytest.raises(SpoolLockedError):
        Spool(orphan, max_bytes=1024, fsync=False, adopting=True)


def test_a_new_lock_file_appears_already_locked(tmp_path, monkeypatch) -> None:
    seen = []
    real_flock = fcntl.flock

    def flock(fd: int, operation: int) -> None:
        seen.append((os.readlink(f"/proc/self/fd/{fd}"), (tmp_path / "1-a" / LOCK_FILE).exists()))
        real_flock(fd, operation)

    monkeypatch.setattr(spool_module.fcntl, "flock", flock)
    spool = Spool(tmp_path / "1-a", max_bytes=1024, fsync=False)
    assert seen == [(str(tmp_path / "1-a" / f"{LOCK_FILE}.new"), False)]
    assert sorted(path.name for path in spool.directory.iterdir() if path.suffix != ".seg") == [
        "lock"
    ]
    assert adopt_orphans(tmp_path, max_bytes=1024, fsync=False) == []
    spool.close()


def test_an_unreadable_directory_is_skipped_not_the_whole_adoption(tmp_path, monkeypatch) -> None:
    keeper = Spool(tmp_path / "1-keep", max_bytes=1 << 20, fsync=False)
    keeper.append([Record("t", "k", b"v")])
    keeper.close()
    Spool(tmp_path / "2-bad", max_bytes=1 << 20, fsync=False).close()
    real_load = Spool._load

    def load(self) -> None:
        if self.directory.name == "2-bad":
            raise PermissionError(13, "Permission denied")
        real_load(self)

    monkeypatch.setattr(Spool, "_load", load)
    adopted = adopt_orphans(tmp_path, max_bytes=1 << 20, fsync=False)
    assert [spool.directory.name for spool in adopted] == ["1-keep"]
    for spool in adopted:
        spool.close()
    # The skipped directory's lock was released: the next pass takes it (and, empty, removes it).
    monkeypatch.setattr(Spool, "_load", real_load)
    again = adopt_orphans(tmp_path, max_bytes=1 << 20, fsync=False)
    assert [spool.directory.name for spool in again] == ["1-keep"]
    assert not (tmp_path / "2-bad").exists()
    for spool in again:
        spool.close()
