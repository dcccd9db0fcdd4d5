"""One ETL pass (Kafka -> rows -> a block per table -> warehouse -> commit) and the schedule.

Order of a pass, and why it is safe to crash anywhere in it:

1. warehouse session: apply DDL, find the last pass that loaded without committing;
2. read Kafka up to the end offsets seen now (or exactly that pass's range, to replay it);
3. warehouse session: record the plan, insert one batch per table with an insert
   deduplication token derived from the offsets it holds, the delivery ledger, the
   identity links (idempotent by key) and the dead letters, then mark the pass loaded;
4. commit the offsets.

A crash before 4 leaves the offsets where they were; the next pass re-reads the same
range, its inserts carry the same tokens, and ClickHouse drops them.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import schedule
from clickhouse_connect.driver.client import Client

from core.config import UNKNOWN_EVENTS_SKIP, Settings
from core.host.registry import Registry
from etl import ledger, sink
from etl.consume import Batch, commit, open_consumer, read_batch
from etl.ledger import PassResult
from etl.trace import log_events
from etl.transform import Loaded, Outcome, Rejected, Skipped, transform
from etl.warehouse import MigrationNeededError, Warehouse

log = logging.getLogger(__name__)


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
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        status = warehouse.ensure_schema(client, registry, ledger.TABLES)
        if status.migrations_needed:
            raise MigrationNeededError(
                "DDL changed for "
                + ", ".join(sorted(status.migrations_needed))
                + ": run `clickstream migrate TABLE FILE` (see docs/warehouse.md)"
            )
        replay = ledger.uncommitted_plan(client, warehouse, settings)
    consumer = open_consumer(settings.kafka, settings.etl)
    try:
        batch = read_batch(
            consumer,
            settings.kafka.topic,
            settings.etl.max_records,
            settings.etl.poll_timeout_s,
            replay,
        )
        result.replayed = any(
            replay.get(p.partition, (None,))[0] == p.expected and p.offsets
            for p in batch.partitions.values()
        )
        if batch.to_commit:
            skip_unknown = settings.etl.unknown_events == UNKNOWN_EVENTS_SKIP
            outcomes = [
                transform(record, registry, skip_unknown=skip_unknown) for record in batch.records
            ]
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
    outcomes: list[Outcome],
    result: PassResult,
    after_insert: Callable[[], None] | None,
) -> None:
    now = datetime.now(UTC)
    ledger.record_pass(client, warehouse, settings, result, "planned", now, batch)
    loaded = [o for o in outcomes if isinstance(o, Loaded)]
    inserted, refused = sink.load_rows(client, warehouse, batch.topic, loaded)
    rejected = [o for o in outcomes if isinstance(o, Rejected)] + refused
    ledger.record_deliveries(client, warehouse, inserted, result.pass_id, now)
    ledger.record_identity_links(client, warehouse, inserted)
    ledger.record_dead_letters(client, warehouse, batch.topic, rejected, now)
    result.rows = dict(Counter(o.table for o in inserted))
    result.dead_letters = dict(Counter(o.reason for o in rejected))
    result.skipped = dict(Counter(o.event for o in outcomes if isinstance(o, Skipped)))
    log_events(result.pass_id, inserted, rejected)
    for event, count in sorted(result.skipped.items()):
        # Once per pass and event, not per message: a removed plugin's backlog is one line.
        fields = {"event": event, "messages": count, "pass_id": result.pass_id}
        log.warning(
            "etl.unknown_event_skipped "
            + " ".join(f"{k}={v}" for k, v in fields.items())
            + ": no installed plugin handles it; CLICKSTREAM_ETL_UNKNOWN_EVENTS=skip passes it",
            extra={"skipped": fields},
        )
    if after_insert is not None:
        after_insert()
    ledger.record_pass(client, warehouse, settings, result, "loaded", now)


def _log_pass(result: PassResult) -> None:
    fields = {
        "pass_id": result.pass_id,
        "messages": result.messages,
        "rows": result.rows,
        "dead_letters": result.dead_letters,
        "skipped": result.skipped,
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
    scheduler.every(settings.etl.interval_s).seconds.do(tick)
    log.info("etl.started interval_s=%s topic=%s", settings.etl.interval_s, settings.kafka.topic)
    tick()
    while not stop.is_set():
        scheduler.run_pending()
        stop.wait(min(0.5, max(scheduler.idle_seconds or 0.0, 0.01)))
    log.info("etl.stopped")
