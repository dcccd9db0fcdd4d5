"""Helpers of the ETL tests: messages and records as Kafka holds them, raw messages written
straight to Kafka, batches as a pass reads them, plugins of the tests' own, and warehouse
queries."""

from __future__ import annotations

import copy
import dataclasses
import os
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from marshmallow import Schema, fields

from core import EventType, PluginSetting, Report, View, hookimpl
from core.config import Settings, env_name
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.host.registry import Registry, default_row
from core.message import ENVELOPE_COLUMNS_DDL
from etl import ledger
from etl.consume import Batch, PartitionRead, Record
from etl.warehouse import Warehouse
from tests.fakes import NoteSchema

BASE_TIME = datetime(2026, 11, 28, 10, 0, 0, 123000, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]
#: The built-in plugins' tables and the plugin folder that owns each.
BUILT_IN_TABLES = {
    "element_clicks": "element_click",
    "page_views": "page_view",
    "quality_changes": "quality_change",
    "search_filters": "search_filter",
    "video_completes": "video_complete",
}


def with_tables(registry: Registry, ddl_of: Callable[[EventType], str]) -> Registry:
    """``registry``'s event types with their tables as ``ddl_of`` gives them: the tables of
    an older release, to test the migrations from it."""
    changed = [
        dataclasses.replace(event_type, ddl=ddl_of(event_type), plugin="")
        for event_type in registry
    ]

    class OlderTables:
        @hookimpl
        def register_event_types(self):
            return changed

    return build_registry(make_plugin_manager([OlderTables()], load_entry_points=False))


def built_in_migration(table: str, name: str) -> str:
    """The migration ``name`` of the built-in plugin owning ``table``."""
    return (ROOT / "plugins" / BUILT_IN_TABLES[table] / "migrations" / name).read_text()


def envelope(
    event: str,
    data: dict[str, Any],
    *,
    user_id: str = "anonymous",
    identity: str = "anonymous",
    at: datetime = BASE_TIME,
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A message as the API publishes it."""
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "event": event,
        "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "user_id": user_id,
        "identity": identity,
        "data": data,
        **extra,
    }


def at(seconds: float) -> datetime:
    """``BASE_TIME`` plus ``seconds``."""
    return BASE_TIME + timedelta(seconds=seconds)


def kafka_record(value: bytes | None, offset: int = 0, partition: int = 0) -> Record:
    """A record of topic ``events`` holding ``value``, as the ETL's consumer gives it."""
    return Record("events", partition, offset, b"k", value, 0)


def click(**changes) -> dict:
    """An ``element_click`` message with the specification's fields, and ``changes``."""
    data = {"element_type": "trailer", "page_type": "movie", **changes}
    return envelope("element_click", data)


def batch_of(topic: str, messages: list[dict | bytes], partition: int = 0, start: int = 0) -> Batch:
    """What a pass reads: ``messages`` (dicts as JSON) from offset ``start`` of one partition."""
    records = [
        Record(
            topic,
            partition,
            start + i,
            b"element_click",
            m if isinstance(m, bytes) else orjson.dumps(m),
            0,
        )
        for i, m in enumerate(messages)
    ]
    read = PartitionRead(partition, expected=start, end=start + len(records))
    read.offsets = [r.offset for r in records]
    read.next_offset = start + len(records)
    return Batch(topic, records, {partition: read})


def merged(*batches: Batch) -> Batch:
    """One batch holding the partitions of ``batches``, their records in the order given."""
    return Batch(
        batches[0].topic,
        [r for b in batches for r in b.records],
        {p: read for b in batches for p, read in b.partitions.items()},
    )


def reordered(batch: Batch, key) -> Batch:
    """The same batch read again, its records interleaved otherwise across partitions."""
    again = copy.deepcopy(batch)
    again.records.sort(key=key)
    return again


# Plugins known only to the tests


STARS_DDL = (
    "CREATE TABLE IF NOT EXISTS {database}.{table} (event_id UUID, "
    "event LowCardinality(String), timestamp DateTime64(3, 'UTC'), user_id String, "
    "identity LowCardinality(String), schema_version UInt16 DEFAULT 1, "
    "anonymous_id Nullable(String), session_id Nullable(String), "
    "sent_at Nullable(DateTime64(3, 'UTC')), client_time Nullable(DateTime64(3, 'UTC')), "
    "device LowCardinality(String), browser LowCardinality(String), "
    "os LowCardinality(String), is_bot Bool, stars UInt8) "
    "ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(timestamp) ORDER BY (stars, event_id)"
)


class StarsSchema(Schema):
    stars = fields.Integer(required=True)  # no range: the table's UInt8 is the only limit


class StarsPlugin:
    """A plugin whose table refuses what its schema lets through (``test_rating``)."""

    def __init__(self, ddl: str = STARS_DDL) -> None:
        self.ddl = ddl

    @hookimpl
    def register_event_types(self) -> list[EventType]:
        return [
            EventType(
                name="test_rating",
                schema=StarsSchema,
                table="test_ratings",
                ddl=self.ddl,
                example={"stars": 5},
            )
        ]


def stars_rating(stars: int) -> dict:
    """A ``test_rating`` message of :class:`StarsPlugin`."""
    return envelope("test_rating", {"stars": stars})


class RatingSchema(Schema):
    movie_id = fields.UUID(required=True)
    stars = fields.Integer(required=True)
    comment = fields.String(load_default="")


class RatingPlugin:
    """A third-party plugin known only to the tests: its own event, schema, table and mapper."""

    @hookimpl
    def register_event_types(self) -> list[EventType]:
        return [
            EventType(
                name="test_rating",
                schema=RatingSchema,
                table="test_ratings",
                ddl=(
                    f"CREATE TABLE IF NOT EXISTS {{database}}.{{table}} ({ENVELOPE_COLUMNS_DDL}, "
                    "movie_id UUID, stars UInt8, comment String) ENGINE = ReplacingMergeTree "
                    "PARTITION BY toYYYYMM(timestamp) ORDER BY (movie_id, event_id)"
                ),
                example={"movie_id": str(uuid.UUID(int=1)), "stars": 5},
                to_row=rating_row,
            )
        ]


def rating_row(message):
    if message["data"]["comment"] == "boom":
        raise RuntimeError("the mapper refuses boom")
    return default_row(message)


def rating(stars: int = 4, comment: str = "Отличный фильм", **kwargs):
    """A ``test_rating`` message of :class:`RatingPlugin`."""
    return envelope(
        "test_rating", {"movie_id": str(uuid.uuid4()), "stars": stars, "comment": comment}, **kwargs
    )


NOTES_DDL = (
    f"CREATE TABLE IF NOT EXISTS {{database}}.{{table}} ({ENVELOPE_COLUMNS_DDL}, text String) "
    "ENGINE = ReplacingMergeTree ORDER BY event_id"
)
NOTE_LIMIT = PluginSetting("note_limit", 3, "Notes longer than this are long.")
LONG_NOTES = View(
    "long_notes",
    "-- notes over the limit\nSELECT text FROM {database}.notes WHERE length(text) > {note_limit}",
    ("notes",),
)
NOTES_REPORT = Report(
    "notes",
    "Long notes.",
    "SELECT text, length(text) AS length FROM {database}.long_notes ORDER BY text",
    "SELECT count() AS long FROM {database}.long_notes",
    needs=("long_notes",),
)


class NotesPlugin:
    """``note_added`` into table ``notes``, a setting, ``views`` on the table and a report."""

    def __init__(self, *views: View) -> None:
        self.views = list(views)

    @hookimpl
    def register_event_types(self):
        example = {"text": "hi"}
        return [EventType("note_added", NoteSchema, "notes", NOTES_DDL, example)]

    @hookimpl
    def register_settings(self):
        return [NOTE_LIMIT]

    @hookimpl
    def register_views(self):
        return self.views

    @hookimpl
    def register_reports(self):
        return [NOTES_REPORT]


def notes_registry(*views: View) -> Registry:
    """The registry of :class:`NotesPlugin` with ``views``, alone."""
    return build_registry(make_plugin_manager([NotesPlugin(*views)], load_entry_points=False))


def ensure_notes(settings: Settings, registry: Registry) -> None:
    """The warehouse's tables and views brought up to date, and three notes in ``notes``."""
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        warehouse.ensure_schema(client, registry, ledger.TABLES)
        client.command(
            f"INSERT INTO {warehouse.table('notes')} (event_id, event, timestamp, user_id, "
            "identity, text) SELECT generateUUIDv4(text), 'note_added', now(), 'u', 'anonymous', "
            "text FROM (SELECT arrayJoin(['ab', 'abcd', 'abcdefgh']) AS text) "
            f"WHERE (SELECT count() FROM {warehouse.table('notes')}) = 0"
        )


def create_topic(settings: Settings, partitions: int = 1) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap.split(","))
    try:
        admin.create_topics([NewTopic(settings.kafka.topic, partitions, 1)], wait_for_metadata=True)
    finally:
        admin.close()


def produce(
    settings: Settings, messages: Iterable[dict[str, Any] | bytes], partition: int | None = None
) -> None:
    """Write messages (dicts as JSON, bytes as they are) to the test's topic, keyed by event."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap.split(","), linger_ms=1)
    try:
        for message in messages:
            if isinstance(message, bytes):
                key, value = b"raw", message
            else:
                key, value = str(message.get("event", "")).encode(), orjson.dumps(message)
            producer.send(settings.kafka.topic, key=key, value=value, partition=partition)
        producer.flush(timeout=10)
    finally:
        producer.close()


def query(settings: Settings, sql: str, **parameters: Any) -> list[tuple]:
    """Rows of ``sql``; ``{db}`` in it is the test's database."""
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        return client.query(
            sql.replace("{db}", warehouse.database), parameters=parameters
        ).result_rows


def scalar(settings: Settings, sql: str, **parameters: Any) -> Any:
    return query(settings, sql, **parameters)[0][0]


def count(settings: Settings, table: str) -> tuple[int, int]:
    """(distinct events, stored rows) of ``table``."""
    return query(settings, f"SELECT uniqExact(event_id), count() FROM {{db}}.{table}")[0]


def etl_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """This process's environment, with the variables that run the ETL (or a warehouse session)
    of ``settings`` in a subprocess, and ``overrides`` by setting name."""
    values = {
        "kafka_bootstrap": settings.kafka.bootstrap,
        "kafka_topic": settings.kafka.topic,
        "warehouse_dsn": settings.warehouse.dsn,
        "warehouse_database": settings.warehouse.database,
        "etl_group": settings.etl.group,
        "etl_poll_timeout_s": str(settings.etl.poll_timeout_s),
        "etl_metrics_port": "0",  # a running stack's ETL may hold the default port
        **overrides,
    }
    return {**os.environ, **{env_name(k): v for k, v in values.items()}}


def visits_of_every_type(registry: Registry, visits: int = 6) -> list[dict[str, Any]]:
    """What a demo sends: ``visits`` visits, each with one event of every type of
    ``registry`` (its example, UUIDs in it fresh per visit, so that a page view's two ends
    pair), seconds apart (the ``*_end`` events last), by three users and logged-out visitors,
    each visit a session of its own from one of five browsers."""
    messages = []
    for visit in range(visits):
        ids: dict[str, str] = {}
        user = "anonymous" if visit % 4 == 3 else f"user-{visit % 3}"
        for step, event_type in enumerate(registry):
            data = {}
            for name, value in event_type.example.items():
                try:
                    uuid.UUID(str(value))
                except ValueError:
                    data[name] = value
                else:
                    data[name] = ids.setdefault(str(value), str(uuid.uuid4()))
            messages.append(
                envelope(
                    event_type.name,
                    data,
                    user_id=user,
                    identity="anonymous" if user == "anonymous" else "verified",
                    at=at(visit * 600 + step * 7 + 60 * event_type.name.endswith("_end")),
                    anonymous_id=f"browser-{visit % 5}",
                    session_id=f"session-{visit}",
                )
            )
    return messages
