"""ETL figures: rows per second of one pass into chDB, where its time goes (the consumer
alone, the envelope check, the engine alone, the ledger), and freshness under the schedule.

``python -m bench.etl`` prints the breakdown of a pass over a fresh topic (median of 3).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from bench.load import traffic
from bench.stats import percentile
from core.config import PROJECT_ROOT, Settings
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.host.registry import Registry
from core.ingest.identity import ANONYMOUS
from core.message import build_message, encode
from etl import ledger, sink
from etl.consume import Batch, join_group, read_batch
from etl.runner import run_pass
from etl.transform import Checked, Loaded, transform
from etl.warehouse import Warehouse


def produce_messages(settings: Settings, registry: Registry, count: int) -> float:
    """Write ``count`` messages, as the API publishes them, to the topic; seconds it took."""
    started = time.monotonic()
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap.split(","),
        linger_ms=20,
        batch_size=512 * 1024,
        acks=1,
    )
    now = datetime.now(UTC)
    try:
        for body in traffic.events(count, [None], seed=7):
            version = registry[body["event"]].version
            message = build_message(body["event"], body["data"], ANONYMOUS, now, version)
            producer.send(settings.kafka.topic, key=body["event"].encode(), value=encode(message))
        producer.flush(timeout=120)
    finally:
        producer.close()
    return time.monotonic() - started


@dataclass(frozen=True)
class PassTiming:
    """One timed pass: messages loaded and the seconds ``run_pass`` took."""

    batch: int
    messages: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.messages / self.seconds


def timed_pass(settings: Settings, registry: Registry, batch: int) -> PassTiming:
    """One pass of at most ``batch`` messages into a fresh database, from the topic's start.

    The tables are created before the clock starts: a pass on a running warehouse finds
    them there.
    """
    run = uuid.uuid4().hex[:8]
    settings = settings.replace(
        etl_group=f"bench-etl-{run}", warehouse_database=f"bench_etl_{run}", etl_max_records=batch
    )
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        warehouse.ensure_schema(client, registry, ledger.TABLES)
    result = run_pass(settings, registry)
    with warehouse.session() as client:
        client.command(f"DROP DATABASE IF EXISTS {warehouse.database}")
    return PassTiming(batch, result.messages, result.duration_s)


@dataclass(frozen=True)
class Breakdown:
    """Seconds of each stage of a pass over the same messages, timed one by one: the
    consumer alone (reading, its group already joined), the envelope check, the engine
    alone (the data blocks into a fresh database, with the deliveries it reads from them),
    the rest of the ledger (deliveries of rows mapped in Python, identity links)."""

    messages: int
    read_s: float
    check_s: float
    engine_s: float
    ledger_s: float

    def rows_per_s(self, seconds: float) -> float:
        return self.messages / seconds


def breakdown(settings: Settings, registry: Registry, batch: int) -> Breakdown:
    """Time each stage of a pass of at most ``batch`` messages from the topic's start."""
    run = uuid.uuid4().hex[:8]
    settings = settings.replace(
        etl_group=f"bench-etl-{run}", warehouse_database=f"bench_etl_{run}", etl_max_records=batch
    )
    member = join_group(settings.kafka, settings.etl)
    try:
        member.join()
        started = time.perf_counter()
        read = read_batch(member, settings.kafka.topic, batch, settings.etl.poll_timeout_s)
        read_s = time.perf_counter() - started
    finally:
        member.close()
    started = time.perf_counter()
    outcomes = [transform(record, registry) for record in read.records]
    check_s = time.perf_counter() - started
    engine_s, ledger_s = _timed_load(settings, registry, read, outcomes)
    return Breakdown(len(read.records), read_s, check_s, engine_s, ledger_s)


def _timed_load(
    settings: Settings, registry: Registry, batch: Batch, outcomes: list
) -> tuple[float, float]:
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        warehouse.ensure_schema(client, registry, ledger.TABLES)
        loaded = [o for o in outcomes if isinstance(o, Loaded | Checked)]
        spans = {p.partition: (p.expected, p.next_offset) for p in batch.partitions.values()}
        pass_id, now = str(uuid.uuid4()), datetime.now(UTC)
        staged = partial(
            ledger.record_staged_deliveries,
            warehouse=warehouse,
            topic=batch.topic,
            pass_id=pass_id,
            now=now,
        )
        started = time.perf_counter()
        inserted, _ = sink.load_rows(
            client, warehouse, batch.topic, loaded, spans, registry, staged
        )
        engine_s = time.perf_counter() - started
        started = time.perf_counter()
        mapped = [o for o in inserted if isinstance(o, Loaded)]
        ledger.record_deliveries(client, warehouse, mapped, pass_id, now)
        ledger.record_identity_links(client, warehouse, inserted)
        ledger_s = time.perf_counter() - started
        client.command(f"DROP DATABASE IF EXISTS {warehouse.database}")
    return engine_s, ledger_s


def wait_loaded(settings: Settings, timeout_s: float) -> bool:
    """Wait until the ETL's group has committed up to the end of the topic."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap.split(","), group_id=settings.etl.group
    )
    try:
        partitions = [
            TopicPartition(settings.kafka.topic, p)
            for p in consumer.partitions_for_topic(settings.kafka.topic) or ()
        ]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ends = consumer.end_offsets(partitions)
            if all((consumer.committed(p) or 0) >= ends[p] for p in partitions):
                return True
            time.sleep(0.5)
        return False
    finally:
        consumer.close()


def loaded_at(settings: Settings) -> dict[str, float]:
    """Per event id of the topic, when its row became queryable (end of its pass), Unix s."""
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        rows = client.query(
            f"""
            SELECT toString(d.event_id), toUnixTimestamp64Milli(p.done) / 1000
            FROM {warehouse.table("event_deliveries")} AS d
            INNER JOIN (
                SELECT pass_id, max(updated_at) AS done FROM {warehouse.table("etl_passes")}
                WHERE status = 'loaded' GROUP BY pass_id
            ) AS p ON d.pass_id = p.pass_id
            WHERE d.topic = {{topic:String}}
            """,
            parameters={"topic": settings.kafka.topic},
        ).result_rows
    return dict(rows)


def freshness(accepted: Path, loaded: dict[str, float]) -> dict[str, float]:
    """Seconds from each accepted event (its 202) to its queryable row: p50, p95, max, lost."""
    delays = []
    missing = 0
    for line in accepted.read_text().splitlines():
        event_id, at = line.split()
        if event_id in loaded:
            delays.append(loaded[event_id] - float(at))
        else:
            missing += 1
    if not delays:
        return {
            "p50_s": float("nan"),
            "p95_s": float("nan"),
            "max_s": float("nan"),
            "missing": missing,
        }
    return {
        "p50_s": percentile(delays, 50),
        "p95_s": percentile(delays, 95),
        "max_s": max(delays),
        "missing": missing,
    }


def main(argv: list[str] | None = None) -> int:
    """Produce messages to a fresh topic, then print the median of ``--runs`` of a whole
    pass and of each stage timed alone."""
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--messages", type=int, default=100_000)
    options.add_argument("--runs", type=int, default=3)
    options.add_argument("--warehouse", default="", help="warehouse DSN (default: a chDB dir)")
    args = options.parse_args(argv)
    run = uuid.uuid4().hex[:8]
    base = Settings.from_env()
    settings = base.replace(
        kafka_topic=f"bench-etl-{run}",
        warehouse_dsn=args.warehouse
        or f"chdb://{PROJECT_ROOT / 'var' / 'bench' / 'etl-warehouse'}",
        log_level="WARNING",
    )
    registry = build_registry(make_plugin_manager())
    try:
        produce_messages(settings, registry, args.messages)
        passes = [timed_pass(settings, registry, args.messages) for _ in range(args.runs)]
        stages = [breakdown(settings, registry, args.messages) for _ in range(args.runs)]
    finally:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap.split(","))
        try:
            admin.delete_topics([settings.kafka.topic])
        finally:
            admin.close()
    n = passes[0].messages

    def line(name: str, seconds: list[float]) -> str:
        median = statistics.median(seconds)
        return f"{name:<34} {median:7.2f} s  {n / median:>10,.0f} rows/s"

    print(f"{n:,} messages, median of {args.runs}; load average {os.getloadavg()[0]:.1f}")
    print(line("whole pass (run_pass)", [p.seconds for p in passes]))
    print(line("consumer alone (read_batch)", [s.read_s for s in stages]))
    print(line("envelope check (transform)", [s.check_s for s in stages]))
    print(line("engine alone (sink.load_rows)", [s.engine_s for s in stages]))
    print(line("ledger (Python deliveries, links)", [s.ledger_s for s in stages]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
