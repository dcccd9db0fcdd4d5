"""``python -m chaos [--duration S] [--seed N] [--short]`` (``make chaos``): one chaos run.

Starts a private stack under ``var/chaos/<run>/``, sends traffic while the seed's faults
are injected and healed, drains the spool and the ETL, checks the raw tables, prints the
table; the long mode (not ``--short``) adds its row to docs/reliability.md. Exit status 1
when the checker found anything; the run's directory then keeps the seed, the fault log,
the answers and the findings (a passing run keeps only those small files).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import shutil
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import requests

from chaos import schedule
from chaos.faults import FaultLog, Injector
from chaos.stack import ROOT, Stack
from chaos.table import Run, report, row, update_doc
from chaos.traffic import Sample, Traffic, login

DOC = ROOT / "docs" / "reliability.md"
SHORT_S = 120.0
RATE = 20.0
DRAIN_TIMEOUT_S = 300.0


def p99(samples: list[Sample]) -> float | None:
    if not samples:
        return None
    latencies = sorted(sample.latency_s * 1000 for sample in samples)
    return latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


def split_by_faults(
    samples: list[Sample], spans: list[tuple[float, float]]
) -> tuple[list[Sample], list[Sample]]:
    """(samples sent while some fault was active, the others)."""
    during, calm = [], []
    for sample in samples:
        inside = any(start <= sample.at <= end for start, end in spans)
        (during if inside else calm).append(sample)
    return during, calm


def keep_alive(stack: Stack, injector: Injector, log: Path, stop: threading.Event) -> None:
    """Start the API or the ETL again when it died outside a fault of its own (a crash the
    faults caused, such as the ETL exiting on a read-only warehouse)."""
    while not stop.wait(1.0):
        with injector.lock:
            for name, process, start in (
                ("etl", stack.etl, stack.etl.start),
                ("api", stack.api, stack.start_api),
            ):
                if not injector.active[name] and not process.running:
                    with log.open("a") as out:
                        out.write(f"{time.time() - injector.log.started:8.2f}s keeper: {name} "
                                  "had exited, started again\n")  # fmt: skip
                    try:
                        start()
                    except RuntimeError as error:
                        print(f"chaos: {error}", file=sys.stderr)


def drain(stack: Stack, settings, timeout_s: float = DRAIN_TIMEOUT_S) -> bool:
    """Wait until every worker's spool is empty and the ETL has loaded everything in Kafka."""
    from etl.reports import consumer_lag

    deadline = time.monotonic() + timeout_s
    ready_in_a_row = 0
    while time.monotonic() < deadline and ready_in_a_row < 20:
        try:
            answer = requests.get(f"{stack.api_url}/health/ready", timeout=5).json()
            ready = answer.get("status") == "ready"
        except (requests.RequestException, ValueError):
            ready = False
        ready_in_a_row = ready_in_a_row + 1 if ready else 0
        time.sleep(0.1 if ready else 1.0)
    idle_in_a_row = 0
    while time.monotonic() < deadline and idle_in_a_row < 3:
        lag = consumer_lag(settings)
        idle_in_a_row = idle_in_a_row + 1 if lag is not None and not sum(lag.values()) else 0
        time.sleep(1.0)
    return idle_in_a_row >= 3


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    options.add_argument("--duration", type=float, default=600.0, help="seconds of traffic")
    options.add_argument("--seed", type=int, help="the fault schedule's seed (default: random)")
    options.add_argument("--short", action="store_true", help=f"{SHORT_S:.0f} s, docs untouched")
    options.add_argument("--rate", type=float, default=RATE, help="requests per second")
    args = options.parse_args(argv)
    duration = SHORT_S if args.short else args.duration
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    faults = schedule.plan(seed, duration)
    print(f"chaos: seed {seed}, {duration:.0f} s, reproduce with --seed {seed}"
          + (" --short" if args.short else f" --duration {duration:.0f}"))  # fmt: skip
    print(f"chaos: {len(faults)} faults, {schedule.overlaps(faults)} overlapping pairs:")
    print("\n".join(f"  {fault.describe()}" for fault in faults), flush=True)
    directory = ROOT / "var" / "chaos" / f"{time.strftime('%Y%m%d-%H%M%S')}-seed{seed}"
    stack = Stack(directory)
    (directory / "schedule.txt").write_text(
        f"seed {seed} duration {duration}\n" + "\n".join(f.describe() for f in faults) + "\n"
    )
    try:
        print(f"chaos: starting the stack under {directory}", flush=True)
        stack.up()
        tokens = login(stack.auth_base, 20)
        log = FaultLog(directory / "faults.log")
        injector = Injector(stack, log)
        traffic = Traffic(
            stack.api_url, tokens, rate=args.rate, seed=seed,
            clock_offset=lambda: injector.clock_offset_s,
        )  # fmt: skip
        stop = threading.Event()
        keeper = threading.Thread(
            target=keep_alive, args=(stack, injector, log.path, stop), daemon=True
        )
        keeper.start()
        started = time.time()
        log.started = started
        injector.run(faults, started)
        asyncio.run(traffic.run(duration))
        injector.wait()
        settings = stack.etl_settings()
        print("chaos: traffic done, every fault healed; draining", flush=True)
        drained = drain(stack, settings)
        stop.set()
        keeper.join()
        stack.etl.stop()
        from chaos.checker import check

        findings, quality = check(settings, traffic.sent)
        if not drained:
            findings.violations.append(f"not drained within {DRAIN_TIMEOUT_S:.0f} s")
        findings.violations += injector.failures
        during, calm = split_by_faults(traffic.samples, log.intervals())
        run = Run(
            seed=seed,
            duration_s=duration,
            faults=Counter(e["kind"] for e in log.entries if e["what"] == "injected"),
            findings=findings,
            p99_faults_ms=p99(during),
            p99_calm_ms=p99(calm),
        )
        print(report(run))
        with (directory / "answers.jsonl").open("wb") as out:
            out.writelines(orjson.dumps(dataclasses.asdict(s)) + b"\n" for s in traffic.sent)
        (directory / "findings.json").write_bytes(
            orjson.dumps(
                {**dataclasses.asdict(findings), "refused": dict(findings.refused)},
                option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
            )
        )
        if not args.short:
            DOC.write_text(update_doc(DOC.read_text(), row(run)))
        for violation in findings.violations[:50]:
            print(f"chaos: FOUND {violation}", file=sys.stderr)
        verdict = "passed" if findings.passed else f"FAILED, {len(findings.violations)} findings"
        print(f"chaos: {verdict}")
        return 0 if findings.passed else 1
    finally:
        stack.down()
        big = [directory / name for name in ("warehouse", "kafka", "redis", "spool")]
        if (directory / "findings.json").exists() and orjson.loads(
            (directory / "findings.json").read_bytes()
        )["violations"] == []:
            for path in big:
                shutil.rmtree(path, ignore_errors=True)
        print(f"chaos: seed {seed}; fault log, answers and findings in {directory}")


if __name__ == "__main__":
    sys.exit(main())
