"""Figures about the warehouse: table counts, data quality, and the reports of plugins.

Each ``*_report`` function returns data (for tests and metrics); ``format_*`` turns
it into the text ``clickstream report`` prints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from core.config import Settings
from core.host.registry import Registry, Report
from etl.consume import committed_offsets, end_offsets, open_consumer
from etl.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableCount:
    """Rows stored in an event table and distinct events among them (what analysts count)."""

    table: str
    events: int
    rows: int


@dataclass(frozen=True)
class ReportResult:
    """What a plugin's report found: its table, and its named figures.

    ``available`` is False while a table or view the report needs does not exist yet.
    """

    report: Report
    columns: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    available: bool = True


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


@dataclass(frozen=True)
class OffsetRewind:
    """The group's committed offset was above the log's end (a truncated or recreated log):
    the pass read the partition again from its beginning."""

    topic: str
    partition: int
    committed: int
    end: int


@dataclass
class QualityReport:
    """Duplicates, gaps, lag, freshness, and the figures of plugins' reports."""

    duplicates: list[DuplicateHour] = field(default_factory=list)
    gaps: list[OffsetGap] = field(default_factory=list)
    rewinds: list[OffsetRewind] = field(default_factory=list)
    #: Report name -> figure -> value, for each plugin report with figures.
    figures: dict[str, dict[str, float]] = field(default_factory=dict)
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
    warehouse = Warehouse.from_settings(settings)
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


def plugin_report(settings: Settings, registry: Registry, name: str) -> ReportResult:
    """The plugin report called ``name``: its rows and figures."""
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        return _run(client, warehouse, registry.reports[name])


def _run(client: Client, warehouse: Warehouse, report: Report) -> ReportResult:
    if not all(warehouse.has_table(client, name) for name in report.needs):
        return ReportResult(report, available=False)
    result = client.query(report.query.replace("{database}", warehouse.database))
    figures: dict[str, float] = {}
    if report.figures:
        answer = client.query(report.figures.replace("{database}", warehouse.database))
        if answer.result_rows:
            figures = dict(zip(answer.column_names, answer.result_rows[0], strict=True))
    return ReportResult(report, list(result.column_names), list(result.result_rows), figures)


def quality_report(
    settings: Settings, registry: Registry, *, with_lag: bool = True
) -> QualityReport:
    """Every data-quality figure; ``lag`` is None when Kafka cannot be asked."""
    warehouse = Warehouse.from_settings(settings)
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
                parameters={"g": settings.etl.group},
            ).result_rows
        ]
        report.rewinds = [
            OffsetRewind(topic, partition, committed, end)
            for topic, partition, committed, end in client.query(
                "SELECT DISTINCT topic, partition, assumeNotNull(rewound_from), end_offset "
                f"FROM {warehouse.table('etl_offsets')} "
                "WHERE consumer_group = {g:String} AND rewound_from IS NOT NULL "
                "ORDER BY topic, partition",
                parameters={"g": settings.etl.group},
            ).result_rows
        ]
        newest, last_pass, dead = client.query(
            f"SELECT (SELECT max(timestamp) FROM {warehouse.table('event_deliveries')}),"
            f" (SELECT maxIf(updated_at, status = 'loaded') FROM {warehouse.table('etl_passes')}),"
            f" (SELECT count() FROM {warehouse.table('dead_letters')} FINAL WHERE requeued = 0)"
        ).result_rows[0]
        for plugin_report in registry.reports.values():
            if plugin_report.figures:
                found = _run(client, warehouse, plugin_report)
                if found.available:
                    report.figures[plugin_report.name] = found.figures
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
        consumer = open_consumer(settings.kafka, settings.etl)
    except Exception as error:
        log.warning("etl.lag_unknown kafka=%s error=%s", settings.kafka.bootstrap, error)
        return None
    try:
        ends = end_offsets(consumer, settings.kafka.topic)
        committed = committed_offsets(consumer, settings.kafka.topic)
        return {p: max(end - (committed.get(p) or 0), 0) for p, end in ends.items()}
    except Exception as error:
        log.warning("etl.lag_unknown kafka=%s error=%s", settings.kafka.bootstrap, error)
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


def format_report(result: ReportResult) -> str:
    """A plugin report as text: its rows as an aligned table, then its figures."""
    if not result.available:
        missing = ", ".join(result.report.needs)
        return f"{result.report.name}: nothing to report yet ({missing} missing)"
    cells = [result.columns] + [[_cell(value) for value in row] for row in result.rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(result.columns))]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    if result.figures:
        lines.append("  ".join(f"{name}: {_cell(value)}" for name, value in result.figures.items()))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return "" if value is None else str(value)


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
    if report.rewinds:
        lines.append("offsets rewound (committed above the log end, read again from its start):")
    lines += [
        f"  {r.topic}[{r.partition}] committed {r.committed}, log end {r.end}"
        for r in report.rewinds
    ]
    for name, figures in report.figures.items():
        lines.append(f"{name}: " + ", ".join(f"{k} {_cell(v)}" for k, v in figures.items()))
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
