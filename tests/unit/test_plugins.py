"""The built-in plugins: their schemas, row mappers and DDL, found through entry points."""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from marshmallow import ValidationError

from core.host.plugin_manager import build_registry, make_plugin_manager
from core.host.registry import EventType, Registry
from core.message import ENVELOPE_COLUMNS, ENVELOPE_COLUMNS_DDL
from etl import ledger
from etl.warehouse import Warehouse, ddl_sha256, render

EVENTS = (
    "element_click",
    "page_view_end",
    "page_view_start",
    "quality_change",
    "search_filter",
    "video_complete",
)
PLUGINS = {"element_click", "page_view", "quality_change", "video_complete", "search_filter"}
COLUMN = re.compile(r"^\s+([a-z_][a-z0-9_]*)\s+\S", re.MULTILINE)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return build_registry(make_plugin_manager())


def example(registry: Registry, event: str, **changes: Any) -> dict[str, Any]:
    """The event's example data with ``changes`` applied; a value of ``...`` removes the field."""
    data = {**registry[event].example, **changes}
    return {key: value for key, value in data.items() if value is not ...}


def errors(registry: Registry, event: str, data: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ValidationError) as raised:
        registry.schema(event).load(data)
    return raised.value.messages


def message(event_type: EventType, data: dict[str, Any]) -> dict[str, Any]:
    """An enriched message as the ETL sees it: ``data`` loaded by the schema."""
    return {
        "event_id": "5b0c6f1e-2f4d-4b8a-9c3e-7d6f5a4b3c2d",
        "event": event_type.name,
        "timestamp": "2026-11-28T10:00:00.123Z",
        "user_id": "user-42",
        "identity": "verified",
        "data": event_type.schema().load(data),
    }


def ddl_columns(ddl: str) -> list[str]:
    body = ddl[ddl.index("(") + 1 : ddl.index("ENGINE")]
    return COLUMN.findall(body)


def test_entry_points_find_all_five_plugins(registry: Registry) -> None:
    manager = make_plugin_manager()
    for name in PLUGINS:
        assert manager.get_plugin(name) is importlib.import_module(f"plugins.{name}")
    assert registry.names == list(EVENTS)


@pytest.mark.parametrize("event", EVENTS)
def test_example_is_valid(registry: Registry, event: str) -> None:
    registry.schema(event).load(example(registry, event))


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ("element_click", "element_type"),
        ("element_click", "page_type"),
        ("page_view_start", "page_view_id"),
        ("page_view_start", "page_type"),
        ("page_view_end", "page_view_id"),
        ("page_view_end", "page_type"),
        ("quality_change", "video_id"),
        ("quality_change", "old_quality"),
        ("quality_change", "new_quality"),
        ("video_complete", "video_id"),
        ("video_complete", "duration_total"),
        ("search_filter", "search_query"),
        ("search_filter", "filters"),
    ],
)
def test_missing_required_field_is_refused(registry: Registry, event: str, field: str) -> None:
    assert errors(registry, event, example(registry, event, **{field: ...})) == {
        field: ["Missing data for required field."]
    }


@pytest.mark.parametrize(
    ("event", "optional"),
    [
        ("element_click", ("element_id", "video_id", "position")),
        ("page_view_start", ("video_id", "url", "referrer")),
        ("page_view_end", ("video_id", "visible_ms")),
        ("quality_change", ("reason", "position_s")),
        ("video_complete", ("watched_s", "duration_s")),
        ("search_filter", ("results_count",)),
    ],
)
def test_optional_fields_may_be_left_out_or_null(
    registry: Registry, event: str, optional: tuple[str, ...]
) -> None:
    schema = registry.schema(event)
    for missing in (..., None):
        loaded = schema.load(example(registry, event, **dict.fromkeys(optional, missing)))
        assert all(loaded[field] is None for field in optional)


@pytest.mark.parametrize("event", EVENTS)
def test_unexpected_field_is_refused(registry: Registry, event: str) -> None:
    assert errors(registry, event, example(registry, event, session_id="x")) == {
        "session_id": ["Unknown field."]
    }


NOT_A_UUID = ["7f1d-not-a-uuid", 12345, "", None]
NOT_A_QUALITY = ["720", 720.0, 720.5, True, -1, 65536, None]
NOT_A_VIDEO_ID = [42, "", "v" * 129, ["tt0111161"], None]
NOT_A_COUNT = ["3", 3.0, False, -1]


@pytest.mark.parametrize(
    ("event", "field", "value"),
    [
        *[("page_view_start", "page_view_id", value) for value in NOT_A_UUID],
        *[("page_view_end", "page_view_id", value) for value in NOT_A_UUID],
        *[("quality_change", "video_id", value) for value in NOT_A_VIDEO_ID],
        *[("video_complete", "video_id", value) for value in NOT_A_VIDEO_ID],
        *[("element_click", "video_id", value) for value in NOT_A_VIDEO_ID[:-1]],
        *[("page_view_start", "video_id", value) for value in NOT_A_VIDEO_ID[:-1]],
        *[("quality_change", "old_quality", value) for value in NOT_A_QUALITY],
        *[("quality_change", "new_quality", value) for value in NOT_A_QUALITY],
        *[("video_complete", "duration_total", value) for value in ["true", 1, 0, "yes", None]],
        *[("element_click", "position", value) for value in NOT_A_COUNT],
        *[("page_view_end", "visible_ms", value) for value in NOT_A_COUNT],
        *[("quality_change", "position_s", value) for value in NOT_A_COUNT],
        *[("video_complete", "watched_s", value) for value in NOT_A_COUNT],
        *[("video_complete", "duration_s", value) for value in [*NOT_A_COUNT, 0]],
        *[("search_filter", "results_count", value) for value in NOT_A_COUNT],
        *[("quality_change", "reason", value) for value in ["Auto", "network", "", 1]],
        ("element_click", "position", 100_001),
        ("page_view_end", "visible_ms", 2**32),
        ("quality_change", "position_s", 86_401),
        ("video_complete", "watched_s", 86_401),
        ("search_filter", "results_count", 10_000_001),
        ("element_click", "page_type", 7),
        *[("search_filter", "search_query", value) for value in [["комедии"], 2, None]],
        *[
            ("search_filter", "filters", value)
            for value in [["genre"], {"genre": "драма"}, 7, None]
        ],
    ],
)
def test_wrong_type_or_value_is_refused(
    registry: Registry, event: str, field: str, value: Any
) -> None:
    assert list(errors(registry, event, example(registry, event, **{field: value}))) == [field]


@pytest.mark.parametrize("quality", [0, 720, 65535])
def test_an_unchanged_or_extreme_quality_is_data(registry: Registry, quality: int) -> None:
    data = example(registry, "quality_change", old_quality=quality, new_quality=quality)
    loaded = registry.schema("quality_change").load(data)
    assert (loaded["old_quality"], loaded["new_quality"]) == (quality, quality)


#: Bounded text fields: (event, field, longest accepted length, may it be empty).
TEXT_FIELDS = [
    ("element_click", "element_type", 64, False),
    ("element_click", "page_type", 64, False),
    ("element_click", "element_id", 256, False),
    ("element_click", "video_id", 128, False),
    ("page_view_start", "page_type", 64, False),
    ("page_view_start", "url", 2048, False),
    ("page_view_start", "referrer", 2048, False),
    ("page_view_end", "page_type", 64, False),
    ("quality_change", "video_id", 128, False),
    ("video_complete", "video_id", 128, False),
    ("search_filter", "search_query", 512, True),
    ("search_filter", "filters", 2048, True),
]


@pytest.mark.parametrize(("event", "field", "limit"), [f[:3] for f in TEXT_FIELDS])
def test_strings_are_bounded(registry: Registry, event: str, field: str, limit: int) -> None:
    schema = registry.schema(event)
    assert schema.load(example(registry, event, **{field: "ё" * limit}))[field] == "ё" * limit
    assert field in errors(registry, event, example(registry, event, **{field: "ё" * (limit + 1)}))


@pytest.mark.parametrize(("event", "field", "limit"), [f[:3] for f in TEXT_FIELDS if not f[3]])
def test_empty_string_is_refused(registry: Registry, event: str, field: str, limit: int) -> None:
    assert errors(registry, event, example(registry, event, **{field: ""})) == {
        field: [f"Length must be between 1 and {limit}."]
    }


@pytest.mark.parametrize(
    ("search_query", "filters", "accepted"),
    [
        ("комедии 2020", "", True),
        ("", "genre=драма", True),
        ("Брат 2", "genre=драма", True),
        ("", "", False),
        ("   ", " ", False),
    ],
)
def test_search_needs_a_query_or_filters(
    registry: Registry, search_query: str, filters: str, accepted: bool
) -> None:
    data = {"search_query": search_query, "filters": filters}
    if accepted:
        assert registry.schema("search_filter").load(data) == {**data, "results_count": None}
    else:
        assert errors(registry, "search_filter", data) == {
            "search_query": ["Give a search_query, filters or both; neither was given."]
        }


@pytest.mark.parametrize(
    ("event", "changes"),
    [
        ("search_filter", {"search_query": "комедии 2020", "filters": "жанр=комедия"}),
        ("element_click", {"element_id": "кнопка-смотреть", "page_type": "главная"}),
        ("page_view_start", {"url": "https://cinema.example/фильмы/дюна"}),
    ],
)
def test_cyrillic_round_trips(registry: Registry, event: str, changes: dict[str, Any]) -> None:
    data = example(registry, event, **changes)
    for encoded in (json.dumps(data), json.dumps(data, ensure_ascii=False).encode()):
        row = registry[event].row(message(registry[event], json.loads(encoded)))
        assert {field: row[field] for field in changes} == changes


@pytest.mark.parametrize("event", EVENTS)
def test_row_of_example(registry: Registry, event: str) -> None:
    event_type = registry[event]
    row = event_type.row(message(event_type, example(registry, event)))
    assert row["event_id"] == uuid.UUID("5b0c6f1e-2f4d-4b8a-9c3e-7d6f5a4b3c2d")
    assert row["timestamp"] == datetime(2026, 11, 28, 10, 0, 0, 123000, tzinfo=UTC)
    assert (row["event"], row["user_id"], row["identity"]) == (event, "user-42", "verified")
    for field, value in event_type.example.items():
        if field == "page_view_id":
            assert row[field] == uuid.UUID(value)
        else:
            assert row[field] == value


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("minimal", [False, True], ids=["example", "required-only"])
def test_row_has_exactly_the_table_columns(registry: Registry, event: str, minimal: bool) -> None:
    """Rows of one table all carry every column, in DDL order, so a batch inserts as one."""
    event_type = registry[event]
    data = example(registry, event)
    if minimal:
        schema = event_type.schema()
        data = {field: data[field] for field, spec in schema.fields.items() if spec.required}
    row = event_type.row(message(event_type, data))
    columns = ddl_columns(event_type.ddl)
    assert columns[: len(ENVELOPE_COLUMNS)] == list(ENVELOPE_COLUMNS)
    assert list(row) == columns


@pytest.mark.parametrize("event", EVENTS)
def test_ddl_is_a_replacing_table_deduplicated_by_event_id(registry: Registry, event: str) -> None:
    ddl = registry[event].ddl.format(database="analytics", table="events")
    assert ddl.startswith("CREATE TABLE IF NOT EXISTS analytics.events")
    assert "ENGINE = ReplacingMergeTree" in ddl
    assert "PARTITION BY toYYYYMM(timestamp)" in ddl
    last_line = ddl.strip().splitlines()[-1]
    assert last_line.startswith("ORDER BY (") and last_line.endswith(", event_id)")


def test_page_view_start_and_end_share_one_table(registry: Registry) -> None:
    start, end = registry["page_view_start"], registry["page_view_end"]
    assert (start.table, start.ddl, start.plugin) == (end.table, end.ddl, end.plugin)
    assert start.table == "page_views"
    assert len({registry[event].table for event in EVENTS}) == 5


# Their tables, generated from their schemas, on the real engine (chDB).

#: The tables as the built-in plugins wrote them by hand (table.sql) before they were generated.
HAND_WRITTEN = Path(__file__).with_name("hand_written_tables")
PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"
TABLES = {
    "element_clicks": "element_click",
    "page_views": "page_view",
    "quality_changes": "quality_change",
    "search_filters": "search_filter",
    "video_completes": "video_complete",
}


def hand_written_registry(registry: Registry) -> Registry:
    """The built-in event types with the hand-written tables existing warehouses were made from."""
    return Registry(
        [
            (
                event_type.plugin,
                [
                    dataclasses.replace(
                        event_type,
                        ddl=(HAND_WRITTEN / f"{TABLES[event_type.table]}.sql")
                        .read_text(encoding="utf-8")
                        .replace("{envelope_columns}", ENVELOPE_COLUMNS_DDL),
                    )
                ],
            )
            for event_type in registry
        ]
    )


def shapes(client, database: str) -> dict[str, dict]:
    """Each table's engine, keys and columns (name, type, default), as ClickHouse reports them."""
    tables = client.query(
        "SELECT name, engine, sorting_key, partition_key, primary_key FROM system.tables "
        "WHERE database = {db:String}",
        parameters={"db": database},
    ).result_rows
    columns = client.query(
        "SELECT table, name, type, default_expression FROM system.columns "
        "WHERE database = {db:String} ORDER BY table, position",
        parameters={"db": database},
    ).result_rows
    return {
        name: {
            "keys": keys,
            "columns": [column[1:] for column in columns if column[0] == name],
        }
        for name, *keys in tables
    }


def test_a_warehouse_of_the_hand_written_tables_takes_the_generated_ones_by_migration(
    registry: Registry, settings
) -> None:
    """A warehouse made from the hand-written tables is left as it is and refused (their sort
    keys and LowCardinality columns were replaced, issue 13) until each plugin's
    ``0003_sort_key.sql`` rebuilds its table, which then has the generated table's shape."""
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        warehouse.ensure_schema(client, hand_written_registry(registry), ledger.TABLES)
        before = shapes(client, warehouse.database)
        status = warehouse.ensure_schema(client, registry, ledger.TABLES)
        untouched = shapes(client, warehouse.database)
        for table, plugin in TABLES.items():
            migration = PLUGINS_DIR / plugin / "migrations" / "0003_sort_key.sql"
            warehouse.migrate(client, registry, table, migration.read_text(encoding="utf-8"))
        after = shapes(client, warehouse.database)
        for table, event_type in registry.tables().items():
            client.command(render(event_type.ddl, warehouse.database, f"{table}__generated"))
        fresh = shapes(client, warehouse.database)
        recorded = warehouse.recorded_versions(client)
    assert status.created == []
    assert set(status.migrations_needed) == set(TABLES)
    for table, event_type in registry.tables().items():
        assert untouched[table] == before[table], table
        assert after[table] != before[table], table
        assert after[table] == fresh[f"{table}__generated"], table
        assert recorded[table] == ddl_sha256(event_type.ddl, table)


def test_every_examples_row_goes_into_its_generated_table(registry: Registry, settings) -> None:
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        warehouse.ensure_schema(client, registry, ledger.TABLES)
        for event in EVENTS:
            event_type = registry[event]
            full = example(registry, event)
            fields = event_type.schema().fields.items()
            required = {field: full[field] for field, spec in fields if spec.required}
            for data in (full, required):
                row = event_type.row({**message(event_type, data), "event_id": str(uuid.uuid4())})
                client.insert(
                    warehouse.table(event_type.table), [list(row.values())], column_names=list(row)
                )
        counts = dict(
            client.query(
                "SELECT table, sum(rows) FROM system.parts WHERE database = {db:String} "
                "AND active AND table IN {tables:Array(String)} GROUP BY table",
                parameters={"db": warehouse.database, "tables": list(TABLES)},
            ).result_rows
        )
        [stored] = client.query(
            f"SELECT page_view_id, visible_ms FROM {warehouse.table('page_views')} "
            "WHERE event = 'page_view_end' LIMIT 1"
        ).result_rows
    # The example and the required fields only, of each event type (page views: two).
    assert counts == {table: 4 if table == "page_views" else 2 for table in TABLES}
    assert stored == (uuid.UUID(registry["page_view_end"].example["page_view_id"]), None)
