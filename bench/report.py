"""docs/benchmarks.md from the figures of one ``python -m bench`` run."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import capacity
from bench.load import SEED_RATE
from bench.stats import Spread
from core.config import Settings

NOTES = Path(__file__).with_name("notes.md")
#: PostHog's capture service (Rust, its 2024 release built from source) on this machine, same
#: Kafka, 202 after the broker's ack: its most single events per second with 128
#: connections, as measured when issue 15 was filed. The batch target is twice that.
PEER_SINGLE_PEAK = 26_700


@dataclass
class Results:
    """Everything one run measured; the benchmarks fill it in as they go."""

    args: dict
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    ceiling: list = field(default_factory=list)
    single: dict[str, list] = field(default_factory=dict)
    batch: list = field(default_factory=list)
    cost: list = field(default_factory=list)
    profile: dict | None = None
    seed: list = field(default_factory=list)
    soak: dict = field(default_factory=dict)
    freshness: list[dict] = field(default_factory=list)
    etl_interval_s: float = 0.0
    produce_s: float = 0.0
    etl: dict[int, list] = field(default_factory=dict)
    #: bench.etl.Breakdown of the largest pass, one per run.
    etl_stages: list = field(default_factory=list)
    batch_events: int = 500
    #: The machine's 1-minute load average when each figure had been measured, by figure.
    loads: dict[str, float] = field(default_factory=dict)
    #: The seed rate's runs while one ETL pass loads a backlog.
    backlog: list = field(default_factory=list)
    #: CPU seconds of each component over the seed-rate runs, and the events they accepted.
    components: list = field(default_factory=list)
    component_events: int = 0
    kafka_bytes: int = 0
    kafka_events: int = 0
    warehouse: list = field(default_factory=list)


def _spread(values) -> Spread:
    return Spread.of(list(values))


def _rows(results: Results, settings: Settings) -> list[tuple[str, str, str, str, str]]:
    """(figure, target, measured, met, load) for the table of the issue."""
    server = results.args["server"]
    single = results.single[server]
    single_rate = _spread(r.rate for r in single)
    single_bad = sum(r.bad for r in single)
    single_cpu = _spread(cpu_ms_per_event(r) for r in single)
    batch_rate = _spread(r.rate * settings.api.max_batch_events for r in results.batch)
    batch_bad = sum(r.bad for r in results.batch)
    batch_cpu = _spread(cpu_ms_per_event(r, settings.api.max_batch_events) for r in results.batch)
    peer_ratio = batch_rate.median / PEER_SINGLE_PEAK
    largest = max(results.etl)
    etl_rate = _spread(t.rows_per_s for t in results.etl[largest])
    fresh = _spread(f["p95_s"] for f in results.freshness)
    missing = sum(f["missing"] for f in results.freshness)
    limit = 2 * results.etl_interval_s
    rss_first, rss_peak, rss_last = _rss(results.soak)
    seed = _latency(results.seed)
    backlog = _latency(results.backlog)

    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    def load(figure: str) -> str:
        value = results.loads.get(figure)
        return "" if value is None else f"{value:.1f}"

    rows = [
        (
            f"ETL load into chDB (one pass of {largest:,} messages)",
            ">= 100,000 rows/s",
            f"{etl_rate.format()} rows/s",
            met(etl_rate.median >= 100_000),
            load("etl"),
        ),
        (
            f"batched ingestion ({settings.api.max_batch_events} per batch, 8 connections)",
            ">= 50,000 events/s",
            f"{batch_rate.format()} events/s, {batch_bad} bad answers",
            met(batch_rate.median >= 50000 and batch_bad == 0),
            load("batch"),
        ),
        (
            "single-event POSTs sustained, 0 errors (wrk, 64 connections)",
            ">= 5,000 /s",
            f"{single_rate.format()} /s, {single_bad} errors",
            met(single_rate.median >= 5000 and single_bad == 0),
            load(f"single-{server}"),
        ),
        (
            f"{SEED_RATE} events/s, open loop, with the ETL schedule",
            "p99 <= 10, p99.9 <= 25 ms",
            seed.text,
            met(seed.p99 <= 10 and seed.p999 <= 25 and not seed.errors),
            load("seed"),
        ),
        (
            f"{SEED_RATE} events/s while one ETL pass loads {results.args['etl_messages']:,}",
            "p99 <= 10, p99.9 <= 25 ms",
            backlog.text,
            met(backlog.p99 <= 10 and backlog.p999 <= 25 and not backlog.errors),
            load("backlog"),
        ),
        (
            "API CPU per single event (wrk runs)",
            "<= 0.2 ms",
            f"{single_cpu.format(3)} ms",
            met(single_cpu.median <= 0.2),
            load(f"single-{server}"),
        ),
        (
            "API CPU per batched event (wrk runs)",
            "",
            f"{batch_cpu.format(3)} ms",
            "",
            load("batch"),
        ),
        (
            f"batched events/s against the peer's single-event peak ({PEER_SINGLE_PEAK:,}/s)",
            ">= 2x",
            f"{peer_ratio:.2f}x",
            met(peer_ratio >= 2),
            load("batch"),
        ),
        (
            f"seed requirement: {SEED_RATE} events/s under 100 ms",
            "p99 < 100 ms",
            f"p99 {_spread(r['p99_ms'] for r in results.seed).format(1)} ms",
            met(seed.p99 < 100 and not seed.errors),
            load("seed"),
        ),
        (
            f"freshness p95 at {SEED_RATE} events/s (schedule every {results.etl_interval_s:g} s)",
            f"<= {limit:g} s",
            f"{fresh.format(2)} s; {missing} events not loaded",
            met(fresh.median <= limit and missing == 0),
            load("seed"),
        ),
        (
            f"API RSS per worker over a {results.soak['seconds']:g} s soak at {SEED_RATE} events/s",
            "<= 150 MB, flat",
            f"{rss_first:.0f} MB at start, {rss_last:.0f} MB at end, peak {rss_peak:.0f} MB",
            met(rss_peak <= 150 and rss_last - rss_first <= 10),
            load("seed"),
        ),
    ]
    return rows


@dataclass(frozen=True)
class _Latency:
    p99: float
    p999: float
    errors: int
    text: str


def _latency(runs: list) -> _Latency:
    """Median p99 and p99.9 of fixed-rate runs, with the errors of all of them."""
    if not runs:
        return _Latency(float("nan"), float("nan"), 0, "not measured")
    p50 = _spread(r["p50_ms"] for r in runs)
    p99 = _spread(r["p99_ms"] for r in runs)
    p999 = _spread(r["p999_ms"] for r in runs)
    errors = sum(r["errors"] for r in runs)
    text = f"p50 {p50.format(1)}, p99 {p99.format(1)}, p99.9 {p999.format(1)} ms; {errors} errors"
    return _Latency(p99.median, p999.median, errors, text)


def cpu_ms_per_event(run, events_per_request: int = 1) -> float:
    """Milliseconds of the API's CPU per event of one closed-loop run (``load.ClosedLoop``)."""
    return run.cpu_api / max(run.rate * events_per_request, 1e-9) * 1000


def _rss(soak: dict) -> tuple[float, float, float]:
    samples = [s for _, s in soak["rss"] if s]
    return max(samples[0]), max(max(s) for s in samples), max(samples[-1])


def table(results: Results, settings: Settings | None = None) -> str:
    """The issue's table with the measured figures, as markdown."""
    settings = settings or Settings.from_env()
    lines = [
        "| figure | target | measured: median (min – max) | met | load (1 min) |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in _rows(results, settings)]
    return "\n".join(lines)


def _machine() -> list[str]:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    return [
        f"- {os.cpu_count()} cores ({cpu}), {memory_kb / 1024 / 1024:.0f} GB RAM, "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}; {wrk.split(' [')[0].strip() or 'wrk'}",
    ]


def markdown(results: Results, settings: Settings) -> str:
    """The whole of docs/benchmarks.md."""
    server = results.args["server"]
    out = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`, options in `python -m bench --help`) on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Everything runs on this one machine: Kafka "
        "(KRaft, one broker), Redis, the auth service, the API, the ETL and the load "
        "generators. Each figure is the median of "
        f"{results.args['runs']} runs with the smallest and largest in brackets.",
        "",
        "## Machine and settings",
        "",
        *_machine(),
        f"- load average (1, 5, 15 min) before: {_load(results.load_before)}, after: "
        f"{_load(results.load_after)}. Other engineers' test suites share these cores: "
        "compare ratios within one run rather than absolute figures across runs.",
        f"- server: {server}, {settings.api.workers} workers x {settings.api.threads} threads; "
        f"Kafka client {settings.kafka.client} (`CLICKSTREAM_KAFKA_CLIENT`), acks=all, "
        f"idempotent, linger {settings.kafka.linger_ms} ms, for every figure; "
        f"ETL every {results.etl_interval_s:g} s, at most {settings.etl.max_records:,} "
        "messages a pass; warehouse: chDB (in-process ClickHouse).",
        "- every 202 means the broker acknowledged the event (acks=all); the bench posts "
        "realistic events of every type, one token in six anonymous, five users.",
        "",
        "## Results",
        "",
        table(results, settings),
        "",
        *_ceiling(results),
        *_servers(results),
        *_cost(results),
        *_etl(results),
        *_capacity(results),
        *_soak(results),
        *_profile(results),
    ]
    if NOTES.exists():
        out += ["", NOTES.read_text().strip()]
    return "\n".join(out) + "\n"


def _load(values: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def _ceiling(results: Results) -> list[str]:
    lines = [
        "## The open-loop generator's own ceiling",
        "",
        "`bench/openloop.py` sends each request at its scheduled time (never waiting for "
        "earlier answers) and measures latency from that time, so a server that falls "
        "behind shows as latency, not as a lower rate (no coordinated omission). Against a "
        "trivial asyncio server that answers a canned 202 (`bench/trivial.py`):",
        "",
        "| rate /s | achieved /s | p50 ms | p99 ms | p99.9 ms | send lag p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for run, rate in zip(results.ceiling, (2000, 4000), strict=False):
        lines.append(
            f"| {rate:,} | {run['rate']:,.0f} | {run['p50_ms']:.2f} | {run['p99_ms']:.2f} | "
            f"{run['p999_ms']:.2f} | {run['send_lag_p99_ms']:.2f} |"
        )
    lines += [
        "",
        "Above a few thousand requests per second one Python generator process adds "
        "latency of its own; the fixed-rate figures below stay well under that.",
        "",
    ]
    return lines


def _servers(results: Results) -> list[str]:
    lines = [
        "## Server: most single events per second (wrk, 2 threads, 64 connections)",
        "",
        "| server | events/s | errors | p50 ms | p99 ms | API cores | API CPU ms/event | "
        "machine cores |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, runs in results.single.items():
        lines.append(
            f"| {kind} | {_spread(r.rate for r in runs).format()} | {sum(r.bad for r in runs)} | "
            f"{statistics.median(r.p50_ms for r in runs):.1f} | "
            f"{statistics.median(r.p99_ms for r in runs):.1f} | "
            f"{statistics.median(r.cpu_api for r in runs):.2f} | "
            f"{statistics.median(cpu_ms_per_event(r) for r in runs):.3f} | "
            f"{statistics.median(r.cpu_machine for r in runs):.2f} |"
        )
    return [*lines, ""]


def _cost(results: Results) -> list[str]:
    lines = [
        "## Cost growth: latency and CPU from 100 events/s to the most it takes",
        "",
        "Open loop, single events, one run per rate. API cores: CPU time of the server's "
        "processes per second; machine cores: the whole machine (Kafka, Redis, the "
        "generator and anyone else) out of "
        f"{os.cpu_count()}.",
        "",
        "| rate /s | achieved /s | errors | p50 ms | p99 ms | p99.9 ms | API cores | "
        "API CPU ms/event | machine cores |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for step in results.cost:
        achieved = max(step["rate"], 1e-9)
        lines.append(
            f"| {step['requests'] / results.args['seconds']:,.0f} | {step['rate']:,.0f} | "
            f"{step['errors']} | {step['p50_ms']:.1f} | {step['p99_ms']:.1f} | "
            f"{step['p999_ms']:.1f} | {step.cpu_api:.2f} | {step.cpu_api / achieved * 1000:.2f} | "
            f"{step.cpu_machine:.2f} |"
        )
    return [*lines, ""]


def _etl(results: Results) -> list[str]:
    lines = [
        "## ETL: time of one pass against its batch size",
        "",
        f"Messages written straight to a fresh topic ({results.produce_s:.1f} s to produce "
        "them), then `etl.runner.run_pass` into a fresh chDB database (tables created "
        "beforehand), reading at most the batch size from the topic's start: Kafka read, "
        "the envelope check, one insert per table (the messages' JSON, mapped by the engine), "
        "deliveries, pass records, commit.",
        "",
        "| batch (messages) | pass seconds | rows/s |",
        "|---|---|---|",
    ]
    for size, runs in sorted(results.etl.items()):
        lines.append(
            f"| {size:,} | {_spread(t.seconds for t in runs).format(2)} | "
            f"{_spread(t.rows_per_s for t in runs).format()} |"
        )
    if results.etl_stages:
        messages = results.etl_stages[0].messages
        lines += [
            "",
            f"Each stage of a pass of {messages:,} timed alone (`python -m bench.etl`): the "
            "consumer (its group joined), the envelope check, the engine (the data blocks "
            "as JSON, and the deliveries it reads from them), the rest of the ledger.",
            "",
            "| stage | seconds | rows/s |",
            "|---|---|---|",
        ]
        for label, attribute in (
            ("consumer alone", "read_s"),
            ("envelope check", "check_s"),
            ("engine alone", "engine_s"),
            ("ledger, the rest", "ledger_s"),
        ):
            seconds = [getattr(stage, attribute) for stage in results.etl_stages]
            rates = [stage.messages / getattr(stage, attribute) for stage in results.etl_stages]
            lines.append(f"| {label} | {_spread(seconds).format(2)} | {_spread(rates).format()} |")
    return [*lines, ""]


def _capacity(results: Results) -> list[str]:
    """CPU per event of each component and bytes per event where it is stored (the figures
    docs/capacity.md sizes deployments with)."""
    events = max(results.component_events, 1)
    lines = [
        f"## Cost per event, by component, at {SEED_RATE} events/s",
        "",
        f"CPU of each part of the stack over the {len(results.seed)} runs at {SEED_RATE} "
        f"events/s with the ETL schedule ({results.component_events:,} events accepted and "
        "loaded), divided by the events. *other*: the load generator and everything else on "
        "the machine.",
        "",
        "| component | CPU ms per event | share |",
        "|---|---|---|",
    ]
    total = sum(c.cpu_s for c in results.components) or 1.0
    for share in results.components:
        lines.append(
            f"| {share.component} | {share.cpu_s / events * 1000:.3f} | {share.cpu_s / total:.0%} |"
        )
    rows = sum(t.rows for t in results.warehouse) or 1
    lines += [
        "",
        "Bytes per event: Kafka (the topic's log segments, uncompressed records, one "
        "replica) and the warehouse (active parts of each event table).",
        "",
        "| where | events | bytes per event | compressed bytes per event |",
        "|---|---|---|---|",
        f"| Kafka | {results.kafka_events:,} | "
        f"{results.kafka_bytes / max(results.kafka_events, 1):.0f} | |",
    ]
    for table in results.warehouse:
        lines.append(
            f"| warehouse `{table.table}` | {table.rows:,} | "
            f"{table.uncompressed / table.rows:.0f} | {table.compressed / table.rows:.0f} |"
        )
    compressed = sum(t.compressed for t in results.warehouse)
    uncompressed = sum(t.uncompressed for t in results.warehouse)
    lines.append(
        f"| warehouse, all event tables | {rows:,} | {uncompressed / rows:.0f} | "
        f"{compressed / rows:.0f} |"
    )
    return [*lines, ""]


def measured(results: Results) -> capacity.Measured:
    """The figures of ``results`` that the capacity plan is sized from."""
    events = max(results.component_events, 1)
    rows = sum(t.rows for t in results.warehouse) or 1
    largest = max(results.etl)
    return capacity.Measured(
        cpu_ms_per_event={c.component: c.cpu_s / events * 1000 for c in results.components},
        kafka_bytes_per_event=results.kafka_bytes / max(results.kafka_events, 1),
        warehouse_bytes_per_event=sum(t.compressed for t in results.warehouse) / rows,
        etl_rows_per_s=statistics.median(t.rows_per_s for t in results.etl[largest]),
    )


def capacity_section(results: Results) -> str:
    """The generated part of docs/capacity.md: what was measured, and the plan it sizes."""
    figures = measured(results)
    lines = [
        f"Measured by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"(load average {_load(results.load_before)} before, {_load(results.load_after)} after).",
        "",
        *_capacity(results)[2:],
        f"One ETL process loaded {figures.etl_rows_per_s:,.0f} rows/s (a pass of "
        f"{max(results.etl):,} messages).",
        "",
        "### The plan",
        "",
        *capacity.plan_table(capacity.plan(figures, SEED_RATE)),
    ]
    return "\n".join(lines)


def replace_section(path: Path, name: str, text: str) -> None:
    """Rewrite what lies between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    before, found, rest = path.read_text().partition(start)
    if not found or end not in rest:
        raise ValueError(f"{path} has no {start} ... {end} section")
    after = rest.partition(end)[2]
    path.write_text(f"{before}{start}\n{text}\n{end}{after}")


def _soak(results: Results) -> list[str]:
    soak = results.soak
    run = soak["load"]
    lines = [
        f"## Memory soak: {soak['seconds']:g} s at {SEED_RATE} events/s",
        "",
        f"{run['ok']:,} events accepted, {run['errors']} errors; latency p50 "
        f"{run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms, p99.9 {run['p999_ms']:.1f} ms. "
        "RSS of each worker (MB):",
        "",
        "| seconds | "
        + " | ".join(f"worker {n + 1}" for n in range(len(soak["rss"][0][1])))
        + " |",
        "|---" * (1 + len(soak["rss"][0][1])) + "|",
    ]
    step = max(1, len(soak["rss"]) // 10)
    for at, values in soak["rss"][::step] + soak["rss"][-1:]:
        lines.append(f"| {at:.0f} | " + " | ".join(f"{v:.1f}" for v in values) + " |")
    return [*lines, ""]


def _profile(results: Results) -> list[str]:
    if not results.profile:
        return ["## Profile", "", "py-spy is not installed: no profile.", ""]
    lines = [
        "## Profile: where a request's time goes",
        "",
        "py-spy samples (200/s, 8 s) of one worker at 1,000 events/s, two views at once. "
        "*wall*: every thread py-spy does not see as idle, so a request thread waiting on "
        "a condition variable for the broker's acknowledgement counts; *CPU*: only the "
        "thread holding the GIL, i.e. where the worker's CPU goes.",
        "",
        "| stage | wall | CPU |",
        "|---|---|---|",
    ]
    wall = dict(results.profile.get("wall", {}).get("stages", []))
    cpu = dict(results.profile.get("cpu", {}).get("stages", []))
    for label in sorted(set(wall) | set(cpu), key=lambda k: -cpu.get(k, 0)):
        lines.append(f"| {label} | {wall.get(label, 0):.1%} | {cpu.get(label, 0):.1%} |")
    for kind in ("cpu", "wall"):
        if kind not in results.profile:
            continue
        lines += ["", f"| function, {kind} samples (self) | share |", "|---|---|"]
        lines += [f"| `{n}` | {share:.1%} |" for n, share in results.profile[kind]["hottest"]]
    return [*lines, ""]
