"""One ETL pass (Kafka -> rows -> a block per table and partition -> warehouse -> commit),
the ETL process that runs passes, and the schedule.

Order of a pass, and why it is safe to crash anywhere in it:

1. warehouse session: apply DDL, find each partition's last plan (to replay one that
   loaded without committing);
2. read the partitions the group gave this member, up to the end offsets seen now (or
   exactly a crashed pass's ranges, and nothing new elsewhere, to replay them);
3. warehouse session: record the plan, insert one block per table and partition with an
   insert deduplication token derived from its offset range, the delivery ledger, the
   identity links (idempotent by key) and the dead letters, then mark the pass loaded;
4. commit the offsets of the partitions the member still owns.

A crash before 4 leaves the offsets where they were; the next pass (this process's or
the partition's next owner's, when the warehouse is shared) re-reads the same ranges,
its blocks carry the same tokens, and ClickHouse drops them.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from functools import partial

import schedule
from clickhouse_connect.driver.client import Client

from core.config import UNKNOWN_EVENTS_SKIP, Settings
from core.host.registry import Registry
from etl import forget, ledger, sink
from etl.consume import Batch, Member, commit, join_group, read_batch
from etl.ledger import PassResult
from etl.trace import log_events
from etl.transform import Checked, Loaded, Outcome, Rejected, Skipped, transform
from etl.warehouse import MigrationNeededError, Warehouse

log = logging.getLogger(__name__)


class Etl:
    """One ETL process: its member of the consumer group, kept from pass to pass (a member
    joining and leaving for every pass would rebalance the group every few seconds), and
    on chDB its claim on the data directory, which refuses a second ETL there."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._resources = ExitStack()
        self._resources.enter_context(Warehouse.from_settings(settings).claim_for_etl())
        self._member: Member | None = None

    @property
    def member(self) -> Member:
        """The member, joining at the first pass (Kafka down fails that pass, not the ETL)."""
        if self._member is None:
            self._member = join_group(self.settings.kafka, self.settings.etl)
            self._resources.callback(self._member.close)
        return self._member

    def run_pass(
        self,
        settings: Settings,
        registry: Registry,
        *,
        after_insert: Callable[[], None] | None = None,
    ) -> PassResult:
        """A pass through this process's member (see :func:`run_pass`)."""
        return run_pass(settings, registry, after_insert=after_insert, etl=self)

    def close(self) -> None:
        """Leave the group and release the claim."""
        self._resources.close()

    def __enter__(self) -> Etl:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_pass(
    settings: Settings,
    registry: Registry,
    *,
    after_insert: Callable[[], None] | None = None,
    etl: Etl | None = None,
) -> PassResult:
    """Load every message that arrived since the last commit; commit only after the inserts.

    ``etl`` is the process's :class:`Etl`; without one, the pass joins the group and claims
    the warehouse for itself, then leaves. ``after_insert`` runs once the pass's rows are
    in the warehouse and before the offsets are committed (fault tests kill the process
    there). Raises on failure (warehouse down, Kafka down, a table needing a migration, a
    replay that could not read its whole range) having committed nothing.
    """
    if etl is None:
        with Etl(settings) as own:
            return run_pass(settings, registry, after_insert=after_insert, etl=own)
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
    batch = read_batch(
        etl.member,
        settings.kafka.topic,
        settings.etl.max_records,
        settings.etl.poll_timeout_s,
        replay,
        settings.etl.replay_timeout_s,
    )
    result.replayed = batch.replayed
    if batch.to_commit:
        skip_unknown = settings.etl.unknown_events == UNKNOWN_EVENTS_SKIP
        outcomes = [
            transform(record, registry, skip_unknown=skip_unknown) for record in batch.records
        ]
        with warehouse.session() as client:
            _load(client, warehouse, settings, registry, batch, outcomes, result, after_insert)
        result.committed = commit(etl.member, batch)
    result.messages = len(batch.records)
    result.gaps = [(p.partition, a, b) for p in batch.partitions.values() for a, b in p.gaps]
    result.duration_s = round(time.monotonic() - started, 3)
    _log_pass(result)
    return result


def _load(
    client: Client,
    warehouse: Warehouse,
    settings: Settings,
    registry: Registry,
    batch: Batch,
    outcomes: list[Outcome],
    result: PassResult,
    after_insert: Callable[[], None] | None,
) -> None:
    now = datetime.now(UTC)
    ledger.record_pass(client, warehouse, settings, result, "planned", now, batch)
    # A replay must not bring back what `clickstream forget` deleted: neither rows nor
    # dead letters of a person forgotten after the message was received.
    outcomes, result.forgotten = forget.drop_forgotten(
        outcomes, forget.load_forgotten(client, warehouse)
    )
    loaded = [o for o in outcomes if isinstance(o, Loaded | Checked)]
    spans = {p.partition: (p.expected, p.next_offset) for p in batch.partitions.values()}
    # The deliveries of a JSON block are read from it by the engine; the others' go after.
    staged_deliveries = partial(
        ledger.record_staged_deliveries,
        warehouse=warehouse,
        topic=batch.topic,
        pass_id=result.pass_id,
        now=now,
    )
    inserted, refused = sink.load_rows(
        client, warehouse, batch.topic, loaded, spans, registry, staged_deliveries
    )
    rejected = [o for o in outcomes if isinstance(o, Rejected)] + refused
    mapped = [o for o in inserted if isinstance(o, Loaded)]
    ledger.record_deliveries(client, warehouse, mapped, result.pass_id, now)
    ledger.record_identity_links(client, warehouse, inserted)
    ledger.record_dead_letters(client, warehouse, batch, rejected, now)
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
        "forgotten": result.forgotten,
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
