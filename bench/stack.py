"""The stack under test: the API server and the ETL schedule, started as ``make up`` does,
on a port, topic, Redis prefix, consumer group and warehouse of the benchmark's own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.config import PROJECT_ROOT, Settings

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def server_command() -> list[str]:
    """The command line of ``make up``'s server; ``CLICKSTREAM_API_SERVER`` picks which."""
    return [sys.executable, "-m", "core.serve"]


def bench_settings(base: Settings, port: int, var_dir: Path) -> Settings:
    """``base`` with everything the benchmark writes kept apart from other users."""
    run = uuid.uuid4().hex[:8]
    return base.replace(
        api_port=port,
        kafka_topic=f"bench-{run}",
        redis_prefix=f"bench:{run}:",
        etl_group=f"bench-etl-{run}",
        warehouse_dsn=f"chdb://{var_dir / 'warehouse'}",
        warehouse_database="bench",
        log_level="WARNING",
        # The benchmark's tokens come from the reference auth service: development.
        jwt_allow_dev_secret=True,
    )


def environment(settings: Settings) -> dict[str, str]:
    """The process environment that gives a child process ``settings``."""
    return {**os.environ, **settings.to_env()}


@dataclass
class Process:
    """A process we started, and its log."""

    name: str
    popen: subprocess.Popen
    log: Path

    def descendants(self) -> list[int]:
        """Its live child processes, their children, and so on."""
        return descendants_of(self.popen.pid)

    def pids(self) -> list[int]:
        return [self.popen.pid, *self.descendants()]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def descendants_of(root: int) -> list[int]:
    """The live child processes of ``root``, their children, and so on."""
    found: list[int] = []
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        found += map(int, children)
        pending += map(int, children)
    return found


def start(name: str, command: list[str], settings: Settings, log_dir: Path) -> Process:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    with open(log, "ab") as out:
        popen = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=environment(settings), stdout=out, stderr=out
        )
    return Process(name, popen, log)


def wait_ready(process: Process, url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    tail = process.log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"{process.name} not ready at {url}:\n{tail}")


@contextmanager
def api_server(kind: str, settings: Settings, log_dir: Path) -> Iterator[Process]:
    """The API under ``kind``, ready to serve, stopped on exit."""
    settings = settings.replace(api_server=kind)
    process = start(f"api-{kind}", server_command(), settings, log_dir)
    try:
        wait_ready(process, f"http://{settings.api.host}:{settings.api.port}/health/ready")
        yield process
    finally:
        process.stop()


@contextmanager
def etl_schedule(settings: Settings, log_dir: Path) -> Iterator[Process]:
    """``clickstream etl`` (the schedule of ``make up``), stopped on exit."""
    process = start("etl", [sys.executable, "-m", "etl.cli", "etl"], settings, log_dir)
    try:
        yield process
    finally:
        process.stop()


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of ``pids`` so far (processes that ended are skipped)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLOCK_TICKS, sum(values) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
