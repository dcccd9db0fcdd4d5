"""The one check at the end of a chaos run: the raw tables against every answer given.

Raw ``count()`` everywhere (no ``FINAL``, no ``*_dedup`` view). Each sent event is found by
its key (its ``session_id``) and, once accepted, by the ``event_id`` of its 202:

- accepted: stored exactly once under that ``event_id``, with the values sent;
- refused (every attempt answered, the last a refusal): not stored;
- a row under the key of an event with an unanswered attempt (or one answered 503
  ``unconfirmed``: sent, neither acknowledged nor spooled) but another ``event_id`` is a
  client retry of a request whose outcome the client could not know (no idempotency key
  exists to tell the API): counted apart, not a broken promise;
- then the quality report's gap, duplicate and lag figures must equal the checker's own.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from chaos.traffic import Sent

#: Event name -> its table (the built-in plugins').
TABLES = {
    "element_click": "element_clicks",
    "page_view_start": "page_views",
    "page_view_end": "page_views",
    "quality_change": "quality_changes",
    "video_complete": "video_completes",
    "search_filter": "search_filters",
}
#: Table -> the specification's data fields stored in it.
FIELDS = {
    "element_clicks": ("element_type", "page_type"),
    "page_views": ("page_view_id", "page_type"),
    "quality_changes": ("video_id", "old_quality", "new_quality"),
    "video_completes": ("video_id", "duration_total"),
    "search_filters": ("search_query", "filters"),
}
ENVELOPE = ("event_id", "event", "session_id", "user_id", "sent_at")


@dataclass(frozen=True)
class Row:
    """One raw row of an event table, as the checker compares it."""

    event_id: str
    event: str
    key: str | None
    user_id: str
    sent_at: datetime | None
    data: dict


@dataclass
class Quality:
    """The figures compared with the quality report: lost offsets, rows stored twice, lag."""

    gaps: int
    stored_twice: int
    lag: int | None


@dataclass
class Findings:
    """What the checker counted, and every violation it found (none on a passing run)."""

    sent: int = 0
    accepted: int = 0
    refused: Counter = field(default_factory=Counter)
    unanswered: int = 0
    stored_once: int = 0
    lost: int = 0
    stored_twice: int = 0
    retry_copies: int = 0
    unanswered_stored: int = 0
    longest_to_table_s: float | None = None
    violations: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.violations


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def _value(value):
    return str(value) if not isinstance(value, bool | int | str) else value


def compare(
    sent: list[Sent],
    rows: list[Row],
    loaded_at: dict[str, datetime],
    quality: Quality,
    report: Quality,
) -> Findings:
    """The findings of one run: ``rows`` of every event table, ``loaded_at`` the first load
    time of each event id, ``quality`` the checker's own figures, ``report`` the report's."""
    found = Findings(sent=len(sent))
    by_id: dict[str, list[Row]] = defaultdict(list)
    by_key: dict[str | None, list[Row]] = defaultdict(list)
    for row in rows:
        by_id[row.event_id].append(row)
        by_key[row.key].append(row)
    keys = {event.key for event in sent}
    strangers = [row for key, group in by_key.items() if key not in keys for row in group]
    if strangers:
        found.violations.append(f"{len(strangers)} rows of no event sent: {strangers[:3]}")
    longest = None
    for event in sent:
        mine = by_key.get(event.key, [])
        outcome = event.outcome
        if outcome == "accepted":
            found.accepted += 1
            copies = by_id.get(event.event_id, [])
            others = [row for row in mine if row.event_id != event.event_id]
            if not copies:
                found.lost += 1
                found.violations.append(f"lost: {event.key} {event.event} {event.event_id}")
            elif len(copies) > 1:
                found.stored_twice += len(copies) - 1
                found.violations.append(
                    f"stored {len(copies)} times: {event.key} {event.event} {event.event_id}"
                )
            else:
                found.stored_once += 1
            for row in copies[:1]:
                wrong = mismatches(event, row)
                if wrong:
                    found.violations.append(f"values differ for {event.key}: {wrong}")
            if others and event.maybe_stored:
                found.retry_copies += len(others)
            elif others:
                found.violations.append(f"stored under other event ids: {event.key} {others}")
            if event.event_id in loaded_at and event.accepted_at is not None:
                took = loaded_at[event.event_id].timestamp() - event.accepted_at
                longest = took if longest is None else max(longest, took)
        elif outcome == "refused":
            found.refused[event.answers[-1]] += 1
            if mine and event.maybe_stored:
                found.unanswered_stored += len(mine)
            elif mine:
                found.violations.append(f"refused ({event.answers}) but stored: {event.key}")
        else:
            found.unanswered += 1
            found.unanswered_stored += len(mine)
    found.longest_to_table_s = longest
    if (quality.gaps, quality.stored_twice, quality.lag) != (
        report.gaps,
        report.stored_twice,
        report.lag,
    ):
        found.violations.append(
            "the quality report disagrees with the checker: "
            f"gaps {report.gaps} vs {quality.gaps}, stored twice {report.stored_twice} vs "
            f"{quality.stored_twice}, lag {report.lag} vs {quality.lag}"
        )
    return found


def mismatches(event: Sent, row: Row) -> dict[str, tuple]:
    """The fields whose stored value is not the one sent: name -> (sent, stored)."""
    expected = {
        "event": event.event,
        "user_id": event.user_id or "anonymous",
        "sent_at": _parse(event.sent_at),
        **event.data,
    }
    stored = {"event": row.event, "user_id": row.user_id, "sent_at": row.sent_at, **row.data}
    return {
        name: (value, stored.get(name))
        for name, value in expected.items()
        if _value(stored.get(name)) != _value(value)
    }


def read_rows(client, warehouse) -> list[Row]:
    """Every raw row of every event table (no FINAL, no view)."""
    rows = []
    for table, names in FIELDS.items():
        if not warehouse.has_table(client, table):
            continue
        columns = ", ".join((*ENVELOPE, *names))
        for values in client.query(f"SELECT {columns} FROM {warehouse.table(table)}").result_rows:
            event_id, event, key, user_id, sent_at = values[:5]
            rows.append(
                Row(
                    str(event_id),
                    event,
                    key,
                    user_id,
                    None if sent_at is None else _utc(sent_at),
                    dict(zip(names, values[5:], strict=True)),
                )
            )
    return rows


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check(settings, sent: list[Sent]) -> tuple[Findings, object]:
    """Read the warehouse (the ETL stopped) and Kafka; the findings and the quality report."""
    from core.host.plugin_manager import build_registry, make_plugin_manager
    from etl.consume import end_offsets, open_consumer
    from etl.reports import quality_report
    from etl.warehouse import Warehouse

    registry = build_registry(make_plugin_manager())
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session(readonly=True) as client:
        rows = read_rows(client, warehouse)
        deliveries = warehouse.table("event_deliveries")
        loaded_at = {
            str(event_id): _utc(moment)
            for event_id, moment in client.query(
                f"SELECT event_id, min(loaded_at) FROM {deliveries} GROUP BY event_id"
            ).result_rows
        }
        loaded_offsets = {
            (partition, offset)
            for partition, offset in client.query(
                f"SELECT DISTINCT partition, offset FROM {deliveries} WHERE topic = {{t:String}}",
                parameters={"t": settings.kafka.topic},
            ).result_rows
        }
        dead = {
            (partition, offset)
            for partition, offset in client.query(
                f"SELECT DISTINCT partition, offset FROM {warehouse.table('dead_letters')}"
            ).result_rows
        }
    consumer = open_consumer(settings.kafka, settings.etl)
    try:
        ends = end_offsets(consumer, settings.kafka.topic)
    finally:
        consumer.close()
    never = sum(
        1
        for partition, end in ends.items()
        for offset in range(end)
        if (partition, offset) not in loaded_offsets and (partition, offset) not in dead
    )
    per_id = Counter(row.event_id for row in rows)
    quality = Quality(gaps=never, stored_twice=sum(n - 1 for n in per_id.values()), lag=never)
    report = quality_report(settings, registry)
    reported = Quality(
        gaps=report.missing_offsets,
        stored_twice=sum(d.pending for d in report.duplicates),
        lag=report.total_lag,
    )
    findings = compare(sent, rows, loaded_at, quality, reported)
    if dead:
        findings.violations.append(f"{len(dead)} dead letters (every event sent is valid)")
    return findings, report
