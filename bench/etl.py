"""ETL figures: rows per second of one pass into chDB, and freshness under the schedule."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from bench.load import traffic
from bench.stats import percentile
from core.config import Settings
from core.host.registry import Registry
from core.ingest.identity import ANONYMOUS
from core.message import build_message, encode
from etl.runner import run_pass
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
        warehouse.ensure_schema(client, registry)
    result = run_pass(settings, registry)
    with warehouse.session() as client:
        client.command(f"DROP DATABASE IF EXISTS {warehouse.database}")
    return PassTiming(batch, result.messages, result.duration_s)


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
