"""Driving the API over HTTP from other processes: wrk (closed loop, for the most it can
take) and :mod:`bench.openloop` (fixed rate, for latency)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import requests

from bench import stack
from core.config import PROJECT_ROOT, Settings

LUA_SCRIPT = Path(__file__).with_name("post.lua")
#: The specification's peak: 660 events per second.
SEED_RATE = 660
sys.path.insert(0, str(PROJECT_ROOT / "scripts"))

import traffic  # noqa: E402


def login_tokens(settings: Settings, users: int) -> list[str | None]:
    """``None`` (anonymous) and one real token per user from the auth service."""
    url = settings.auth.url.rsplit("/", 1)[0] + "/login"
    tokens: list[str | None] = [None]
    for n in range(users):
        answer = requests.post(url, json={"user_id": f"bench-{n}", "ttl_s": 7200}, timeout=5)
        answer.raise_for_status()
        tokens.append(answer.json()["token"])
    return tokens


def write_bodies(directory: Path, tokens: list[str | None], batch_size: int) -> tuple[Path, Path]:
    """Files of single-event bodies and of ``batch_size``-event batch bodies, one per line."""
    directory.mkdir(parents=True, exist_ok=True)
    singles = directory / "single.jsonl"
    batches = directory / "batch.jsonl"
    events = list(traffic.events(10_000, tokens, seed=4))
    singles.write_bytes(b"\n".join(orjson.dumps(e) for e in events[:2000]) + b"\n")
    batches.write_bytes(
        b"\n".join(
            orjson.dumps(events[start : start + batch_size])
            for start in range(0, len(events) - batch_size + 1, batch_size)
        )
        + b"\n"
    )
    return singles, batches


@dataclass(frozen=True)
class ClosedLoop:
    """One wrk run: requests per second and everything that was not the expected answer."""

    rate: float
    bad: int
    p50_ms: float
    p99_ms: float
    cpu_api: float
    cpu_machine: float

    @property
    def clean(self) -> bool:
        return self.bad == 0


def wrk(
    url: str,
    bodies: Path,
    seconds: float,
    connections: int,
    api: stack.Process | None = None,
    status: int = 202,
    body_must: str | None = None,
) -> ClosedLoop:
    """Run wrk for ``seconds`` with ``connections``; CPU figures are cores busy on average."""
    env = {**os.environ, "BENCH_BODIES": str(bodies), "BENCH_STATUS": str(status)}
    if body_must:
        env["BENCH_BODY_MUST"] = body_must
    command = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        url,
    ]
    cpu = _CpuMeter(api)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    api_cores, machine_cores = cpu.cores()
    result = json.loads(done.stdout.strip().splitlines()[-1])
    errors = sum(result[k] for k in ("connect", "read", "write", "timeout", "status"))
    return ClosedLoop(
        rate=result["requests"] / (result["duration_us"] / 1e6),
        bad=max(result["bad"], errors),
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        cpu_api=api_cores,
        cpu_machine=machine_cores,
    )


@dataclass(frozen=True)
class OpenLoop:
    """One fixed-rate run of :mod:`bench.openloop`, with the CPU it cost."""

    summary: dict
    cpu_api: float
    cpu_machine: float

    def __getitem__(self, key: str):
        return self.summary[key]


def open_loop(
    url: str,
    bodies: Path,
    rate: float,
    seconds: float,
    api: stack.Process | None = None,
    ids: Path | None = None,
) -> OpenLoop:
    """``rate`` requests per second for ``seconds``, from a separate process."""
    command = [
        sys.executable,
        "-m",
        "bench.openloop",
        "--url",
        url,
        "--rate",
        str(rate),
        "--duration",
        str(seconds),
        "--bodies",
        str(bodies),
    ]
    if ids:
        command += ["--ids", str(ids)]
    cpu = _CpuMeter(api)
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    api_cores, machine_cores = cpu.cores()
    return OpenLoop(json.loads(done.stdout.strip().splitlines()[-1]), api_cores, machine_cores)


class _CpuMeter:
    """Cores kept busy, on average, by the API's processes and by the whole machine."""

    def __init__(self, api: stack.Process | None) -> None:
        self._pids = api.pids() if api else []
        self._started = time.monotonic()
        self._api = stack.cpu_seconds(self._pids)
        self._busy, self._total = stack.machine_busy()

    def cores(self) -> tuple[float, float]:
        elapsed = time.monotonic() - self._started
        busy, total = stack.machine_busy()
        cores = os.cpu_count() or 1
        machine = (busy - self._busy) / max(total - self._total, 1e-9) * cores
        return (stack.cpu_seconds(self._pids) - self._api) / elapsed, machine
