"""Injecting the scheduled faults into a running stack, healing them, and logging both.

Each fault runs in a thread of its own from its start to its heal, so faults overlap as the
schedule says. What each kind does, as root and as a user:

- ``api_worker_kill``: ``kill -9`` of one granian worker; ``api_kill``: of the master and its
  workers at once; ``etl_kill``: of the ETL, ``param`` seconds after the start of a pass
  (the next pass after the one the log shows ending), so it lands mid-read or mid-insert.
  A killed process is started again when the fault heals (if it is not back by itself).
- ``kafka_stop``: ``services.sh down kafka`` then ``up``; ``kafka_pause``: ``SIGSTOP`` of the
  broker, then ``SIGCONT``. ``redis_stop``: ``down``/``up`` of Redis. ``auth_stop``: the auth
  service stopped; ``auth_slow``: it answers after ``param`` seconds (``/_test/faults``).
- ``spool_full``: as root, the spool's own tmpfs is filled to the last byte (a real ENOSPC);
  as a user, the spool directories are made unwritable (``chmod``), an emulation.
- ``warehouse_readonly``: as root, the chDB directory is bind-mounted onto itself read-only
  (``chmod`` does not stop root); as a user, ``chmod -R a-w``.
- ``clock_step``: the traffic's ``sent_at`` is ``param`` seconds off until the heal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

from chaos.schedule import Fault
from chaos.stack import Stack, can_mount


@dataclass
class FaultLog:
    """What was injected and when (wall clock), written line by line to ``path``."""

    path: Path
    started: float = field(default_factory=time.time)
    entries: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def write(self, fault: Fault, number: int, what: str, **details) -> None:
        now = time.time()
        entry = {"t": round(now - self.started, 2), "at": now, "kind": fault.kind, "what": what}
        entry.update(fault=number, **details)
        with self._lock:
            self.entries.append(entry)
            with self.path.open("a") as out:
                out.write(f"{entry['t']:8.2f}s {fault.kind:<20} {what} {details or ''}\n")

    def intervals(self) -> list[tuple[float, float]]:
        """Wall-clock spans during which some fault was active (injected and not yet healed)."""
        opened: dict[int, float] = {}
        spans = []
        for entry in self.entries:
            if entry["what"] == "injected":
                opened[entry["fault"]] = entry["at"]
            elif entry["what"] in ("healed", "failed") and entry["fault"] in opened:
                spans.append((opened.pop(entry["fault"]), entry["at"]))
        spans += [(start, time.time()) for start in opened.values()]
        return spans


def _retried(action, attempts: int = 5, pause_s: float = 2.0) -> None:
    """``action()``, tried again after a failure: a service restarting, a port still held."""
    for attempt in range(1, attempts + 1):
        try:
            action()
            return
        except Exception:
            if attempt == attempts:
                raise
            time.sleep(pause_s)


class Injector:
    """Runs a schedule against a stack; ``clock`` is read by the traffic for ``sent_at``."""

    def __init__(self, stack: Stack, log: FaultLog) -> None:
        self.stack = stack
        self.log = log
        self.clock_offset_s = 0.0
        self.threads: list[threading.Thread] = []
        self.failures: list[str] = []
        #: Component -> faults of it injected and not yet healed; the keeper leaves those alone.
        self.active: Counter = Counter()
        self.lock = threading.Lock()

    def run(self, faults: list[Fault], start: float) -> None:
        """Start every fault's thread; each waits for its time (``start`` is ``time.time()``)."""
        for number, fault in enumerate(faults):
            thread = threading.Thread(
                target=self._one, args=(number, fault, start), name=fault.kind, daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def wait(self) -> None:
        for thread in self.threads:
            thread.join()

    def _one(self, number: int, fault: Fault, start: float) -> None:
        time.sleep(max(0.0, start + fault.at_s - time.time()))
        with self.lock:
            self.active[fault.component] += 1
        try:
            heal = getattr(self, f"_{fault.kind}")(fault, number)
            time.sleep(max(0.0, start + fault.heal_s - time.time()))
            _retried(heal)
        except Exception as error:  # noqa: BLE001 - a fault that fails is a finding, logged
            self.failures.append(f"{fault.describe()}: {type(error).__name__}: {error}")
            self.log.write(fault, number, "failed", error=str(error))
        else:
            self.log.write(fault, number, "healed")
        finally:
            with self.lock:
                self.active[fault.component] -= 1

    def _injected(self, fault: Fault, number: int, **details) -> None:
        self.log.write(fault, number, "injected", **details)

    # --- the API ----------------------------------------------------------------------------

    def _restart_api(self) -> None:
        if self.stack.api.running:
            try:
                requests.get(f"{self.stack.api_url}/health/live", timeout=2)
                return
            except requests.RequestException:
                self.stack.api.kill()
        self.stack.start_api()

    def _api_worker_kill(self, fault: Fault, number: int):
        workers = self.stack.api.children()
        if workers:
            victim = workers[min(int(fault.param * len(workers)), len(workers) - 1)]
            os.kill(victim, signal.SIGKILL)
        self._injected(fault, number, pid=workers[0] if workers else None)
        return self._restart_api

    def _api_kill(self, fault: Fault, number: int):
        self.stack.api.kill()
        self._injected(fault, number)
        return self._restart_api

    # --- the ETL ----------------------------------------------------------------------------

    def _etl_kill(self, fault: Fault, number: int):
        # The log's "etl.pass" line ends a pass; the next starts one interval later.
        log = self.stack.etl.log
        seen = log.read_bytes().count(b"etl.pass ") if log.exists() else 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and log.read_bytes().count(b"etl.pass ") == seen:
            time.sleep(0.02)
        from chaos.stack import ETL_INTERVAL_S

        time.sleep(ETL_INTERVAL_S + fault.param)
        self.stack.etl.kill()
        self._injected(fault, number)

        def heal() -> None:
            if not self.stack.etl.running:
                self.stack.etl.start()

        return heal

    # --- Kafka, Redis, the auth service ------------------------------------------------------

    def _kafka_stop(self, fault: Fault, number: int):
        self.stack.services("down", "kafka")
        self._injected(fault, number)
        return lambda: self.stack.services("up", "kafka")

    def _kafka_pause(self, fault: Fault, number: int):
        pid = self.stack.kafka_pid()
        if pid:
            os.kill(pid, signal.SIGSTOP)
        self._injected(fault, number, pid=pid)
        return lambda: pid and os.kill(pid, signal.SIGCONT)

    def _redis_stop(self, fault: Fault, number: int):
        self.stack.services("down", "redis")
        self._injected(fault, number)
        return lambda: self.stack.services("up", "redis")

    def _auth_stop(self, fault: Fault, number: int):
        self.stack.auth.stop()
        self._injected(fault, number)

        def heal() -> None:
            self.stack.auth.start()
            from chaos.stack import wait_for

            wait_for(f"{self.stack.auth_base}/health", "the auth service")

        return heal

    def _auth_slow(self, fault: Fault, number: int):
        def set_delay(delay_s: float) -> None:
            requests.post(
                f"{self.stack.auth_base}/_test/faults", json={"delay_s": delay_s}, timeout=5
            ).raise_for_status()

        _retried(lambda: set_delay(fault.param))
        self._injected(fault, number)
        return lambda: set_delay(0.0)

    # --- disks and clocks -------------------------------------------------------------------

    def _spool_full(self, fault: Fault, number: int):
        spool = self.stack.spool_dir
        if self.stack.spool_mounted:
            filler = spool / "filler"
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                for size in (1 << 20, 4096, 1):  # down to the last byte
                    with contextlib.suppress(OSError):
                        while os.write(fd, b"\0" * size) == size:
                            pass
            finally:
                os.close(fd)
            self._injected(fault, number, how="tmpfs filled")
            return lambda: filler.unlink()
        directories = [spool, *(p for p in spool.iterdir() if p.is_dir())]
        for directory in directories:
            directory.chmod(0o555)
        self._injected(fault, number, how="chmod a-w (emulated)")
        return lambda: [directory.chmod(0o755) for directory in directories]

    def _warehouse_readonly(self, fault: Fault, number: int):
        target = str(self.stack.warehouse_dir)
        if can_mount():
            _mount_read_only(target)
            self._injected(fault, number, how="read-only bind mount")
            return lambda: subprocess.run(["umount", "-l", target], check=True)
        subprocess.run(["chmod", "-R", "a-w", target], check=True)
        self._injected(fault, number, how="chmod -R a-w")
        return lambda: subprocess.run(["chmod", "-R", "u+w", target], check=True)

    def _clock_step(self, fault: Fault, number: int):
        self.clock_offset_s = fault.param
        self._injected(fault, number)

        def heal() -> None:
            self.clock_offset_s = 0.0

        return heal


#: Attempts at making a directory read-only while a process writes into it.
READ_ONLY_ATTEMPTS = 20


def _mount_read_only(target: str) -> None:
    """Bind-mount ``target`` onto itself read-only. mount binds, then remounts read-only; a
    file the ETL opens for writing in between, through the new mount, makes the remount
    busy (exit 32): then the bind is undone and tried again."""
    for _ in range(READ_ONLY_ATTEMPTS):
        done = subprocess.run(["mount", "--bind", "-o", "ro", target, target], capture_output=True)
        if done.returncode == 0:
            return
        # A bind onto the same filesystem: os.path.ismount cannot tell, findmnt can.
        if subprocess.run(["findmnt", "--mountpoint", target], capture_output=True).returncode == 0:
            subprocess.run(["umount", "-l", target], check=True)
        time.sleep(0.1)
    raise RuntimeError(f"{target} stayed writable: {done.stderr.decode(errors='replace')}")
