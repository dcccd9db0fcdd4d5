"""The ETL's own tables: each one's DDL, and every write a pass makes to them.

``dead_letters`` (what could not be loaded, and why), ``event_deliveries`` (every event
loaded, by pass and offset: what the duplicate report counts), ``etl_passes`` and
``etl_offsets`` (each pass's plan and outcome: what replays and gap reports read),
``api_requests`` (the API's request counters, scraped after each pass: availability),
``identity_links`` (which anonymous_id a verified user was seen with: identity stitching),
and ``forget_requests`` and ``forgotten`` (deletions on request and the hashed ids they
forgot, which :mod:`etl.forget` writes and every pass reads).
:meth:`etl.warehouse.Warehouse.ensure_schema` creates them beside the event tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from clickhouse_connect.driver.client import Client

from core.config import Settings
from core.host.json_load import OFFSET
from etl.consume import Batch, Record
from etl.sink import insert_token
from etl.transform import Checked, Loaded, Rejected
from etl.warehouse import Warehouse

#: Each table of the ETL's own, by name: its DDL, the one description of its columns.
TABLES: dict[str, str] = {
    "dead_letters": """
CREATE TABLE IF NOT EXISTS {database}.{table} (
    id UUID,
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    key String,
    payload String,
    reason LowCardinality(String),
    detail String,
    received_at DateTime64(3, 'UTC'),
    requeued UInt8 DEFAULT 0,
    requeued_at Nullable(DateTime64(3, 'UTC')),
    version UInt64 DEFAULT 0
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(received_at)
ORDER BY (topic, partition, offset)
""",
    "event_deliveries": """
CREATE TABLE IF NOT EXISTS {database}.{table} (
    event_id UUID,
    event LowCardinality(String),
    target_table LowCardinality(String),
    timestamp DateTime64(3, 'UTC'),
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    pass_id UUID,
    loaded_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (event, toStartOfHour(timestamp), event_id)
""",
    "etl_passes": """
CREATE TABLE IF NOT EXISTS {database}.{table} (
    pass_id UUID,
    consumer_group String,
    topic String,
    status LowCardinality(String),
    started_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    messages UInt64,
    rows UInt64,
    dead_letters UInt64,
    replayed UInt8,
    duration_s Float64,
    skipped UInt64 DEFAULT 0,
    forgotten UInt64 DEFAULT 0
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (consumer_group, topic, pass_id)
""",
    "etl_offsets": """
CREATE TABLE IF NOT EXISTS {database}.{table} (
    pass_id UUID,
    consumer_group String,
    topic String,
    partition UInt32,
    expected_offset UInt64,
    first_offset Nullable(UInt64),
    last_offset Nullable(UInt64),
    next_offset UInt64,
    end_offset UInt64,
    messages UInt64,
    gaps Array(Tuple(UInt64, UInt64)),
    planned_at DateTime64(3, 'UTC'),
    rewound_from Nullable(UInt64)
) ENGINE = MergeTree
ORDER BY (consumer_group, topic, partition, planned_at)
""",
    "forget_requests": """
CREATE TABLE IF NOT EXISTS {database}.{table} (
    request_id UUID,
    requested_at DateTime64(3, 'UTC'),
    requested_by String,
    user_id_sha256 Array(String),
    anonymous_id_sha256 Array(String),
    linked_anonymous_ids UInt32,
    deleted Map(String, UInt64),
    deleted_total UInt64,
    unreadable_dead_letters UInt64
) ENGINE = MergeTree
ORDER BY requested_at
""",
    "forgotten": """
CREATE TABLE IF NOT EXISTS {database}.{table} (
    kind LowCardinality(String),
    id_sha256 String,
    request_id UUID,
    forgotten_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
ORDER BY (kind, id_sha256)
""",
    # The API's request counters as scraped after each pass (cumulative, reset by a restart
    # of the server): what the availability figures are computed from (etl/availability.py).
    "api_requests": """
CREATE TABLE IF NOT EXISTS {database}.{table} (
    scraped_at DateTime64(3, 'UTC'),
    source String,
    reachable UInt8,
    requests UInt64,
    server_errors UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMM(scraped_at)
ORDER BY (source, scraped_at)
""",
    # min and max per key: a replayed pass inserts the same rows again and changes nothing.
    "identity_links": """
CREATE TABLE IF NOT EXISTS {database}.{table} (
    anonymous_id String,
    user_id String,
    first_seen SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
) ENGINE = AggregatingMergeTree
ORDER BY (anonymous_id, user_id)
""",
}

#: The columns of ``dead_letters`` a pass writes; re-queueing adds ``requeued``, ``requeued_at``.
DEAD_LETTER_COLUMNS = (
    "id",
    "topic",
    "partition",
    "offset",
    "key",
    "payload",
    "reason",
    "detail",
    "received_at",
)
LINK_COLUMNS = ("anonymous_id", "user_id", "first_seen", "last_seen")
DELIVERY_COLUMNS = (
    "event_id",
    "timestamp",
    "event",
    "target_table",
    "topic",
    "partition",
    "offset",
    "pass_id",
    "loaded_at",
)
PASS_COLUMNS = (
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
    "skipped",
    "forgotten",
)
OFFSET_COLUMNS = (
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
    "rewound_from",
)


@dataclass
class PassResult:
    """What one pass did; ``rows``, ``dead_letters`` and ``skipped`` are empty for a pass with
    nothing new."""

    pass_id: str
    messages: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    #: Messages of event types no installed plugin handles, committed past (by event name),
    #: when ``CLICKSTREAM_ETL_UNKNOWN_EVENTS`` is ``skip``.
    skipped: dict[str, int] = field(default_factory=dict)
    #: Messages of persons forgotten since they were received (a replay), committed past.
    forgotten: int = 0
    committed: dict[int, int] = field(default_factory=dict)
    gaps: list[tuple[int, int, int]] = field(default_factory=list)
    replayed: bool = False
    duration_s: float = 0.0


DEAD_LETTER_NAMESPACE = uuid.UUID("6f1c1d2e-8a59-4b51-9b8e-2f5d0c3a7e11")


def dead_letter_id(record: Record) -> uuid.UUID:
    """A dead letter's id: the same for the same topic, partition and offset."""
    return uuid.uuid5(DEAD_LETTER_NAMESPACE, f"{record.topic}/{record.partition}/{record.offset}")


def record_pass(
    client: Client,
    warehouse: Warehouse,
    settings: Settings,
    result: PassResult,
    status: str,
    started: datetime,
    batch: Batch | None = None,
) -> None:
    """Write a pass's ``status`` (``planned``, then ``loaded``); with ``batch``, its plan too:
    per partition, the offsets expected, read and to commit, the gaps, and the committed
    offset it rewound from when that was above the log's end."""
    now = datetime.now(UTC)
    rows, letters = sum(result.rows.values()), sum(result.dead_letters.values())
    skipped = sum(result.skipped.values())
    client.insert(
        warehouse.table("etl_passes"),
        [
            [
                result.pass_id,
                settings.etl.group,
                settings.kafka.topic,
                status,
                started,
                now,
                rows + letters + skipped + result.forgotten,
                rows,
                letters,
                int(result.replayed),
                (now - started).total_seconds(),
                skipped,
                result.forgotten,
            ]
        ],
        column_names=list(PASS_COLUMNS),
    )
    if batch is None:
        return
    moved = [p for p in batch.partitions.values() if p.moved]
    client.insert(
        warehouse.table("etl_offsets"),
        [
            [
                result.pass_id,
                settings.etl.group,
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
                p.rewound_from,
            ]
            for p in moved
        ],
        column_names=list(OFFSET_COLUMNS),
    )


def record_deliveries(
    client: Client,
    warehouse: Warehouse,
    inserted: Iterable[Loaded | Checked],
    pass_id: str,
    now: datetime,
) -> None:
    """One ``event_deliveries`` row per event loaded: which record, which pass, when.

    The rows go in as one JSON array a line, which orjson writes and the engine reads
    without a Python conversion per value (a pass of 100,000 events spent most of this
    call there); a :class:`Checked` record's id and time are its message's own text.
    """
    loaded_at = now.isoformat()
    body = b"\n".join(
        orjson.dumps(
            (
                *_id_and_time(o),
                o.event,
                o.table,
                o.record.topic,
                o.record.partition,
                o.record.offset,
                pass_id,
                loaded_at,
            )
        )
        for o in inserted
    )
    if body:
        client.raw_insert(
            warehouse.table("event_deliveries"),
            DELIVERY_COLUMNS,
            body,
            settings={"date_time_input_format": "best_effort"},
            fmt="JSONCompactEachRow",
        )


def record_staged_deliveries(
    client: Client,
    staging: str,
    event: str,
    table: str,
    partition: int,
    *,
    warehouse: Warehouse,
    topic: str,
    pass_id: str,
    now: datetime,
) -> None:
    """The ``event_deliveries`` rows of a JSON block (etl.sink), read by the engine from the
    staging table that still holds the block: no Python work per event."""
    client.command(
        f"INSERT INTO {warehouse.table('event_deliveries')} ({', '.join(DELIVERY_COLUMNS)}) "
        f"SELECT event_id, timestamp, {{event:String}}, {{table:String}}, {{topic:String}}, "
        f"{{partition:UInt32}}, {OFFSET}, {{pass_id:UUID}}, {{now:DateTime64(3, 'UTC')}} "
        f"FROM {staging}",
        parameters={
            "event": event,
            "table": table,
            "topic": topic,
            "partition": partition,
            "pass_id": pass_id,
            "now": now,
        },
    )


def _id_and_time(outcome: Loaded | Checked) -> tuple:
    if isinstance(outcome, Checked):
        return outcome.message["event_id"], outcome.message["timestamp"]
    return outcome.event_id, outcome.timestamp


def record_identity_links(
    client: Client, warehouse: Warehouse, inserted: Iterable[Loaded | Checked]
) -> None:
    """One ``identity_links`` row per (anonymous_id, user_id) among the events loaded, with
    the first and last time seen; idempotent, as the table keeps the min and max per key."""
    seen: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    for o in inserted:
        if o.link is not None:
            first, last = seen.get(o.link, (o.timestamp, o.timestamp))
            seen[o.link] = (min(first, o.timestamp), max(last, o.timestamp))
    if seen:
        client.insert(
            warehouse.table("identity_links"),
            [[*link, first, last] for link, (first, last) in sorted(seen.items())],
            column_names=list(LINK_COLUMNS),
        )


def record_dead_letters(
    client: Client,
    warehouse: Warehouse,
    batch: Batch,
    rejected: list[Rejected],
    now: datetime,
) -> None:
    """The records that could not be loaded, with the reason: a block per partition with the
    token of its range, so that a replay stores them once."""
    by_partition: dict[int, list[Rejected]] = {}
    for outcome in sorted(rejected, key=lambda o: (o.record.partition, o.record.offset)):
        by_partition.setdefault(outcome.record.partition, []).append(outcome)
    for partition, letters in by_partition.items():
        read = batch.partitions[partition]
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
                for o in letters
            ],
            column_names=list(DEAD_LETTER_COLUMNS),
            settings={
                "insert_deduplication_token": insert_token(
                    batch.topic,
                    "dead_letters",
                    DEAD_LETTER_COLUMNS,
                    partition,
                    (read.expected, read.next_offset),
                    [o.record for o in letters],
                )
            },
        )


def uncommitted_plan(
    client: Client, warehouse: Warehouse, settings: Settings
) -> dict[int, tuple[int, int]]:
    """Per partition, the (start, stop) of the latest pass that planned a load there: what a
    pass re-reads exactly when that pass loaded but did not commit."""
    rows = client.query(
        f"SELECT partition, argMax(expected_offset, planned_at), argMax(next_offset, planned_at) "
        f"FROM {warehouse.table('etl_offsets')} "
        "WHERE consumer_group = {g:String} AND topic = {t:String} GROUP BY partition",
        parameters={"g": settings.etl.group, "t": settings.kafka.topic},
    ).result_rows
    return {partition: (start, stop) for partition, start, stop in rows}
