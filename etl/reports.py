"""Figures about the warehouse: table counts, page-view durations, data quality.

Each ``*_report`` function returns data (for tests and metrics); ``format_*`` turns
it into the text ``clickstream report`` prints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from core.config import Settings
from core.registry import Registry
from etl.consume import committed_offsets, end_offsets, open_consumer
from etl.warehouse import PAGE_VIEW_VIEW, Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableCount:
    """Rows stored in an event table and distinct events among them (what analysts count)."""

    table: str
    events: int
    rows: int


@dataclass(frozen=True)
class PageTypeDurations:
    """Closed page views of one page type: how many, and their duration in seconds."""

    page_type: str
    count: int
    median_s: float
    p90_s: float


@dataclass
class PageViewReport:
    """Durations by page type, and page views that are not closed pairs."""

    by_page_type: list[PageTypeDurations] = field(default_factory=list)
    open: int = 0
    timed_out: int = 0
    orphan_ends: int = 0


@dataclass(frozen=True)
class DuplicateHour:
    """Events of one type and hour that arrived more than once.

    ``duplicates`` = deliveries - distinct event ids; ``redelivered`` are the same
    Kafka record loaded again (a pass that crashed before committing), the rest
    are the same event in several records (a client or producer retry).
    ``pending`` duplicates are still stored twice (merges collapse them; the
    ``*_dedup`` views and reports hide them); ``absorbed`` ones are not stored twice.
    """

    event: str
    hour: datetime
    deliveries: int
    duplicates: int
    redelivered: int
    pending: int
    absorbed: int


@dataclass(frozen=True)
class OffsetGap:
    """Kafka offsets ``[start, stop)`` a pass expected and never received (lost data)."""

    topic: str
    partition: int
    start: int
    stop: int

    @property
    def missing(self) -> int:
        return self.stop - self.start


@dataclass
class QualityReport:
    """Duplicates, gaps, unmatched page views, lag and freshness."""

    duplicates: list[DuplicateHour] = field(default_factory=list)
    gaps: list[OffsetGap] = field(default_factory=list)
    open_page_views: int = 0
    timed_out_page_views: int = 0
    orphan_page_view_ends: int = 0
    lag: dict[int, int] | None = None
    newest_event: datetime | None = None
    freshness_s: float | None = None
    last_pass: datetime | None = None
    dead_letters: int = 0

    @property
    def total_lag(self) -> int | None:
        return None if self.lag is None else sum(self.lag.values())

    @property
    def missing_offsets(self) -> int:
        return sum(gap.missing for gap in self.gaps)


def counts_report(settings: Settings, registry: Registry) -> list[TableCount]:
    """Per event table: distinct events and stored rows (they differ until merges)."""
    warehouse = Warehouse(settings)
    result = []
    with warehouse.session() as client:
        for table in registry.tables():
            if not warehouse.has_table(client, table):
                result.append(TableCount(table, 0, 0))
                continue
            events, rows = client.query(
                f"SELECT uniqExact(event_id), count() FROM {warehouse.table(table)}"
            ).result_rows[0]
            result.append(TableCount(table, events, rows))
    return result


def pageviews_report(settings: Settings) -> PageViewReport:
    """Closed page views' durations by page type, and open / timed-out / orphan counts."""
    warehouse = Warehouse(settings)
    report = PageViewReport()
    with warehouse.session() as client:
        if not warehouse.has_table(client, PAGE_VIEW_VIEW):
            return report
        view = warehouse.table(PAGE_VIEW_VIEW)
        for page_type, count, median, p90 in client.query(
            f"SELECT page_type, count(), quantile(0.5)(duration_s), quantile(0.9)(duration_s) "
            f"FROM {view} WHERE status = 'closed' GROUP BY page_type ORDER BY page_type"
        ).result_rows:
            report.by_page_type.append(PageTypeDurations(page_type, count, median, p90))
        statuses = dict(
            client.query(f"SELECT status, count() FROM {view} GROUP BY status").result_rows
        )
    report.open = statuses.get("open", 0)
    report.timed_out = statuses.get("timed_out", 0)
    report.orphan_ends = statuses.get("orphan_end", 0)
    return report


def quality_report(
    settings: Settings, registry: Registry, *, with_lag: bool = True
) -> QualityReport:
    """Every data-quality figure; ``lag`` is None when Kafka cannot be asked."""
    warehouse = Warehouse(settings)
    report = QualityReport()
    with warehouse.session() as client:
        if not warehouse.has_table(client, "event_deliveries"):
            return report
        report.duplicates = _duplicates(client, warehouse, registry)
        report.gaps = [
            OffsetGap(topic, partition, start, stop)
            for topic, partition, start, stop in client.query(
                "SELECT DISTINCT topic, partition, gap.1, gap.2 "
                f"FROM {warehouse.table('etl_offsets')} ARRAY JOIN gaps AS gap "
                "WHERE consumer_group = {g:String} ORDER BY topic, partition, gap.1",
                parameters={"g": settings.etl_group},
            ).result_rows
        ]
        newest, last_pass, dead = client.query(
            f"SELECT (SELECT max(timestamp) FROM {warehouse.table('event_deliveries')}),"
            f" (SELECT maxIf(updated_at, status = 'loaded') FROM {warehouse.table('etl_passes')}),"
            f" (SELECT count() FROM {warehouse.table('dead_letters')} FINAL WHERE requeued = 0)"
        ).result_rows[0]
        pageviews = (
            pageviews_report(settings) if warehouse.has_table(client, PAGE_VIEW_VIEW) else None
        )
    if pageviews is not None:
        report.open_page_views = pageviews.open
        report.timed_out_page_views = pageviews.timed_out
        report.orphan_page_view_ends = pageviews.orphan_ends
    report.dead_letters = dead
    epoch = datetime.fromtimestamp(0, UTC)
    if newest is not None and _utc(newest) > epoch:
        report.newest_event = _utc(newest)
        report.freshness_s = (datetime.now(UTC) - report.newest_event).total_seconds()
    if last_pass is not None and _utc(last_pass) > epoch:
        report.last_pass = _utc(last_pass)
    if with_lag:
        report.lag = consumer_lag(settings)
    return report


def _duplicates(client: Client, warehouse: Warehouse, registry: Registry) -> list[DuplicateHour]:
    pending: dict[tuple[str, datetime], int] = {}
    for table in registry.tables():
        if warehouse.has_table(client, table):
            for event, hour, extra in client.query(
                f"SELECT event, toStartOfHour(timestamp) AS hour, count() - uniqExact(event_id) "
                f"FROM {warehouse.table(table)} GROUP BY event, hour "
                "HAVING count() > uniqExact(event_id)"
            ).result_rows:
                pending[(event, hour)] = extra
    result = []
    for event, hour, deliveries, duplicates, redelivered in client.query(
        "SELECT event, toStartOfHour(timestamp) AS hour, count(), count() - uniqExact(event_id), "
        "count() - uniqExact(topic, partition, offset) "
        f"FROM {warehouse.table('event_deliveries')} GROUP BY event, hour "
        "HAVING count() > uniqExact(event_id) ORDER BY hour, event"
    ).result_rows:
        stored_twice = min(pending.get((event, hour), 0), duplicates)
        result.append(
            DuplicateHour(
                event=event,
                hour=_utc(hour),
                deliveries=deliveries,
                duplicates=duplicates,
                redelivered=redelivered,
                pending=stored_twice,
                absorbed=duplicates - stored_twice,
            )
        )
    return result


def consumer_lag(settings: Settings) -> dict[int, int] | None:
    """Messages waiting for the ETL per partition (end offset - committed offset)."""
    try:
        consumer = open_consumer(settings)
    except Exception as error:
        log.warning("etl.lag_unknown kafka=%s error=%s", settings.kafka_bootstrap, error)
        return None
    try:
        ends = end_offsets(consumer, settings.kafka_topic)
        committed = committed_offsets(consumer, settings.kafka_topic)
        return {p: max(end - (committed.get(p) or 0), 0) for p, end in ends.items()}
    except Exception as error:
        log.warning("etl.lag_unknown kafka=%s error=%s", settings.kafka_bootstrap, error)
        return None
    finally:
        consumer.close()


def _utc(moment: datetime) -> datetime:
    # clickhouse-connect returns DateTime64(3, 'UTC') values as naive datetimes.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_counts(counts: list[TableCount]) -> str:
    lines = [f"{'table':<24} {'events':>10} {'rows stored':>12}"]
    lines += [f"{c.table:<24} {c.events:>10} {c.rows:>12}" for c in counts]
    return "\n".join(lines)


def format_pageviews(report: PageViewReport) -> str:
    lines = [f"{'page type':<16} {'count':>7} {'median s':>10} {'p90 s':>10}"]
    lines += [
        f"{d.page_type:<16} {d.count:>7} {d.median_s:>10.1f} {d.p90_s:>10.1f}"
        for d in report.by_page_type
    ]
    lines.append(
        f"open: {report.open}  timed out (start, no end): {report.timed_out}  "
        f"orphan ends (end, no start): {report.orphan_ends}"
    )
    return "\n".join(lines)


def format_quality(report: QualityReport) -> str:
    lines = ["duplicates (same event_id more than once), by event type and hour:"]
    if not report.duplicates:
        lines.append("  none")
    for d in report.duplicates:
        lines.append(
            f"  {d.hour:%Y-%m-%d %H:00} {d.event:<20} deliveries {d.deliveries}  "
            f"duplicates {d.duplicates} (redelivered {d.redelivered})  "
            f"absorbed {d.absorbed}  pending merge {d.pending}"
        )
    lines.append(f"offset gaps (lost messages): {report.missing_offsets}")
    lines += [
        f"  {g.topic}[{g.partition}] offsets {g.start}..{g.stop - 1} ({g.missing} missing)"
        for g in report.gaps
    ]
    lines.append(
        f"page views: open {report.open_page_views}, start without end past the timeout "
        f"{report.timed_out_page_views}, end without start {report.orphan_page_view_ends}"
    )
    lag = "unknown (Kafka unreachable)" if report.lag is None else str(report.total_lag)
    lines.append(f"consumer lag (messages waiting): {lag}")
    if report.freshness_s is None:
        lines.append("freshness: no event loaded yet")
    else:
        lines.append(
            f"freshness: newest event {report.newest_event:%Y-%m-%d %H:%M:%S} UTC, "
            f"{report.freshness_s:.0f} s ago"
        )
    last = f"{report.last_pass:%Y-%m-%d %H:%M:%S} UTC" if report.last_pass else "never"
    lines.append(f"last loaded pass: {last}")
    lines.append(f"dead letters waiting: {report.dead_letters}")
    return "\n".join(lines)
