"""One ETL pass (Kafka -> rows -> a batch per table -> warehouse -> commit) and the schedule.

Order of a pass, and why it is safe to crash anywhere in it:

1. warehouse session: apply DDL, find the last pass that loaded without committing;
2. read Kafka up to the end offsets seen now (or exactly that pass's range, to replay it);
3. warehouse session: record the plan, insert one batch per table with an insert
   deduplication token derived from the offsets it holds, the delivery ledger and
   the dead letters, then mark the pass loaded;
4. commit the offsets.

A crash before 4 leaves the offsets where they were; the next pass re-reads the same
range, its inserts carry the same tokens, and ClickHouse drops them.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import schedule
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError

from core.config import Settings
from core.host.registry import Registry
from etl.consume import Batch, commit, open_consumer, read_batch
from etl.trace import log_events
from etl.transform import INSERT_FAILED, Loaded, Record, Rejected, transform
from etl.warehouse import MigrationNeededError, Warehouse

log = logging.getLogger(__name__)

DELIVERY_COLUMNS = [
    "event_id", "event", "target_table", "timestamp", "topic", "partition", "offset", "pass_id",
    "loaded_at",
]  # fmt: skip
DEAD_LETTER_COLUMNS = [
    "id", "topic", "partition", "offset", "key", "payload", "reason", "detail", "received_at",
]  # fmt: skip
DEAD_LETTER_NAMESPACE = uuid.UUID("6f1c1d2e-8a59-4b51-9b8e-2f5d0c3a7e11")


@dataclass
class PassResult:
    """What one pass did; ``rows`` and ``dead_letters`` are empty for a pass with nothing new."""

    pass_id: str
    messages: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    committed: dict[int, int] = field(default_factory=dict)
    gaps: list[tuple[int, int, int]] = field(default_factory=list)
    replayed: bool = False
    duration_s: float = 0.0


def dead_letter_id(record: Record) -> uuid.UUID:
    """A dead letter's id: the same for the same topic, partition and offset."""
    return uuid.uuid5(DEAD_LETTER_NAMESPACE, f"{record.topic}/{record.partition}/{record.offset}")


def insert_token(topic: str, table: str, columns: Iterable[str], records: Iterable[Record]) -> str:
    """The insert deduplication token of a batch: which offsets of which topic, into which table."""
    digest = hashlib.sha256(f"{topic}\n{table}\n{','.join(columns)}\n".encode())
    for record in records:
        digest.update(f"{record.partition}:{record.offset},".encode())
    return digest.hexdigest()


def run_pass(
    settings: Settings,
    registry: Registry,
    *,
    after_insert: Callable[[], None] | None = None,
) -> PassResult:
    """Load every message that arrived since the last commit; commit only after the inserts.

    ``after_insert`` runs once the pass's rows are in the warehouse and before the
    offsets are committed (fault tests kill the process there). Raises on failure
    (warehouse down, Kafka down, a table needing a migration) having committed nothing.
    """
    started = time.monotonic()
    result = PassResult(pass_id=str(uuid.uuid4()))
    warehouse = Warehouse(settings)
    with warehouse.session() as client:
        status = warehouse.ensure_schema(client, registry)
        if status.migrations_needed:
            raise MigrationNeededError(
                "DDL changed for "
                + ", ".join(sorted(status.migrations_needed))
                + ": run `clickstream migrate TABLE FILE` (see docs/warehouse.md)"
            )
        replay = _uncommitted_plan(client, warehouse, settings)
    consumer = open_consumer(settings)
    try:
        batch = read_batch(
            consumer,
            settings.kafka_topic,
            settings.etl_max_records,
            settings.etl_poll_timeout_s,
            replay,
        )
        result.replayed = any(
            replay.get(p.partition, (None,))[0] == p.expected and p.offsets
            for p in batch.partitions.values()
        )
        if batch.to_commit:
            outcomes = [transform(record, registry) for record in batch.records]
            with warehouse.session() as client:
                _load(client, warehouse, settings, batch, outcomes, result, after_insert)
            commit(consumer, batch)
    finally:
        consumer.close()
    result.messages = len(batch.records)
    result.committed = batch.to_commit
    result.gaps = [(p.partition, a, b) for p in batch.partitions.values() for a, b in p.gaps]
    result.duration_s = round(time.monotonic() - started, 3)
    _log_pass(result)
    return result


def _load(
    client: Client,
    warehouse: Warehouse,
    settings: Settings,
    batch: Batch,
    outcomes: list[Loaded | Rejected],
    result: PassResult,
    after_insert: Callable[[], None] | None,
) -> None:
    now = datetime.now(UTC)
    _record_pass(client, warehouse, settings, result, "planned", now, batch)
    loaded = [o for o in outcomes if isinstance(o, Loaded)]
    rejected = [o for o in outcomes if isinstance(o, Rejected)]
    by_table: dict[tuple[str, tuple[str, ...]], list[Loaded]] = defaultdict(list)
    for outcome in loaded:
        by_table[(outcome.table, tuple(outcome.row))].append(outcome)
    inserted: list[Loaded] = []
    for (table, columns), group in by_table.items():
        ok, failed = _insert_table(client, warehouse, batch.topic, table, columns, group)
        inserted += ok
        rejected += failed
    if inserted:
        client.insert(
            warehouse.table("event_deliveries"),
            [
                [
                    o.event_id,
                    o.event,
                    o.table,
                    o.timestamp,
                    o.record.topic,
                    o.record.partition,
                    o.record.offset,
                    result.pass_id,
                    now,
                ]
                for o in inserted
            ],  # fmt: skip
            column_names=DELIVERY_COLUMNS,
        )
    if rejected:
        rejected.sort(key=lambda o: (o.record.partition, o.record.offset))
        client.insert(
            warehouse.table("dead_letters"),
            [
                [
                    dead_letter_id(o.record),
                    o.record.topic,
                    o.record.partition,
                    o.record.offset,
                    o.record.key or b"",
                    o.record.value or b"",
                    o.reason,
                    o.detail,
                    now,
                ]
                for o in rejected
            ],  # fmt: skip
            column_names=DEAD_LETTER_COLUMNS,
            settings={
                "insert_deduplication_token": insert_token(
                    batch.topic, "dead_letters", DEAD_LETTER_COLUMNS, [o.record for o in rejected]
                )
            },
        )
    result.rows = dict(Counter(o.table for o in inserted))
    result.dead_letters = dict(Counter(o.reason for o in rejected))
    log_events(result.pass_id, inserted, rejected)
    if after_insert is not None:
        after_insert()
    _record_pass(client, warehouse, settings, result, "loaded", now, None)


def _insert_table(
    client: Client,
    warehouse: Warehouse,
    topic: str,
    table: str,
    columns: tuple[str, ...],
    group: list[Loaded],
) -> tuple[list[Loaded], list[Rejected]]:
    """Insert ``group`` as one block; if the data is refused, row by row, refusals rejected."""
    try:
        _insert_rows(client, warehouse, topic, table, columns, group)
        return group, []
    except OperationalError:
        raise
    except Exception as error:
        log.warning("etl.insert_failed table=%s rows=%d error=%s", table, len(group), error)
    ok: list[Loaded] = []
    failed: list[Rejected] = []
    for outcome in group:
        try:
            _insert_rows(client, warehouse, topic, table, columns, [outcome])
            ok.append(outcome)
        except OperationalError:
            raise
        except Exception as error:
            failed.append(Rejected(outcome.record, INSERT_FAILED, f"{table}: {error}"[:2000]))
    return ok, failed


def _insert_rows(client, warehouse, topic, table, columns, group: list[Loaded]) -> None:
    client.insert(
        warehouse.table(table),
        [[o.row[c] for c in columns] for o in group],
        column_names=list(columns),
        settings={
            "insert_deduplication_token": insert_token(
                topic, table, columns, [o.record for o in group]
            )
        },
    )


def _record_pass(client, warehouse, settings, result, status, started, batch) -> None:
    now = datetime.now(UTC)
    client.insert(
        warehouse.table("etl_passes"),
        [
            [
                result.pass_id,
                settings.etl_group,
                settings.kafka_topic,
                status,
                started,
                now,
                sum(result.rows.values()) + sum(result.dead_letters.values()),
                sum(result.rows.values()),
                sum(result.dead_letters.values()),
                int(result.replayed),
                (now - started).total_seconds(),
            ]
        ],  # fmt: skip
        column_names=[
            "pass_id",
            "consumer_group",
            "topic",
            "status",
            "started_at",
            "updated_at",
            "messages",
            "rows",
            "dead_letters",
            "replayed",
            "duration_s",
        ],  # fmt: skip
    )
    if batch is None:
        return
    moved = [p for p in batch.partitions.values() if p.next_offset > p.expected]
    client.insert(
        warehouse.table("etl_offsets"),
        [
            [
                result.pass_id,
                settings.etl_group,
                batch.topic,
                p.partition,
                p.expected,
                p.first,
                p.last,
                p.next_offset,
                p.end,
                len(p.offsets),
                p.gaps,
                started,
            ]
            for p in moved
        ],  # fmt: skip
        column_names=[
            "pass_id",
            "consumer_group",
            "topic",
            "partition",
            "expected_offset",
            "first_offset",
            "last_offset",
            "next_offset",
            "end_offset",
            "messages",
            "gaps",
            "planned_at",
        ],  # fmt: skip
    )


def _uncommitted_plan(
    client: Client, warehouse: Warehouse, settings: Settings
) -> dict[int, tuple[int, int]]:
    """Per partition, the (start, stop) of the latest pass that planned a load there."""
    rows = client.query(
        f"SELECT partition, argMax(expected_offset, planned_at), argMax(next_offset, planned_at) "
        f"FROM {warehouse.table('etl_offsets')} "
        "WHERE consumer_group = {g:String} AND topic = {t:String} GROUP BY partition",
        parameters={"g": settings.etl_group, "t": settings.kafka_topic},
    ).result_rows
    return {partition: (start, stop) for partition, start, stop in rows}


def _log_pass(result: PassResult) -> None:
    fields = {
        "pass_id": result.pass_id,
        "messages": result.messages,
        "rows": result.rows,
        "dead_letters": result.dead_letters,
        "gaps": result.gaps,
        "replayed": result.replayed,
        "duration_s": result.duration_s,
    }
    log.info(
        "etl.pass " + " ".join(f"{k}={v}" for k, v in fields.items()), extra={"etl_pass": fields}
    )


def run_forever(
    settings: Settings,
    registry: Registry,
    stop: threading.Event | None = None,
    pass_function: Callable[[Settings, Registry], PassResult] = run_pass,
) -> None:
    """Run a pass now and then every ``etl_interval_s`` until SIGTERM/SIGINT or ``stop`` is set.

    A failed pass is logged and retried at the next tick; a pass in progress
    finishes before the loop stops.
    """
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())

    def tick() -> None:
        try:
            pass_function(settings, registry)
        except Exception:
            log.exception("etl.pass_failed: nothing committed, the next pass retries")

    scheduler = schedule.Scheduler()
    scheduler.every(settings.etl_interval_s).seconds.do(tick)
    log.info("etl.started interval_s=%s topic=%s", settings.etl_interval_s, settings.kafka_topic)
    tick()
    while not stop.is_set():
        scheduler.run_pending()
        stop.wait(min(0.5, max(scheduler.idle_seconds or 0.0, 0.01)))
    log.info("etl.stopped")
