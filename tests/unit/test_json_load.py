"""The structure and SELECT the engine loads a generated table's messages with
(``core.host.json_load``), derived from the envelope and the field kinds."""

from __future__ import annotations

from marshmallow import Schema

from core import (
    UUID,
    Boolean,
    Choice,
    EventType,
    Integer,
    Number,
    Text,
    Timestamp,
    hookimpl,
    table_ddl,
)
from core.host.json_load import json_insert
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.message import ENVELOPE_COLUMNS, ENVELOPE_INPUT
from tests.etl_helpers import RatingPlugin, envelope

MESSAGE = envelope("x", {})


class EveryKind(Schema):
    text = Text(required=True)
    page = Text(low_cardinality=True, load_default=None)
    choice = Choice(("auto", "manual"), required=True)
    small = Integer(min=0, max=10, required=True)
    signed = Integer(min=-5, max=5, load_default=None)
    unbounded = Integer(required=True)
    huge = Integer(min=0, load_default=None)
    number = Number(required=True)
    flag = Boolean(required=True)
    id = UUID(required=True)
    moment = Timestamp(load_default=None)


COLUMNS = tuple(EveryKind().load_fields)


def test_the_envelope_comes_first_then_every_column_of_the_table_in_order():
    insert = json_insert(EveryKind, COLUMNS)

    assert insert.columns == ENVELOPE_COLUMNS + COLUMNS
    assert insert.select[: len(ENVELOPE_COLUMNS)] == tuple(e for _, _, e in ENVELOPE_INPUT)
    assert insert.structure.startswith(
        "event_id UUID, event String, timestamp DateTime64(3, 'UTC')"
    )


def test_each_field_is_read_nullable_as_its_kinds_type_without_low_cardinality():
    structure = json_insert(EveryKind, COLUMNS).structure

    assert structure.endswith(
        "data Tuple(text Nullable(String), page Nullable(String), choice Nullable(String), "
        "small Nullable(Int64), signed Nullable(Int64), unbounded Nullable(Int64), "
        "huge Nullable(UInt64), number Nullable(Float64), flag Nullable(Bool), "
        "id Nullable(UUID), moment Nullable(DateTime64(3, 'UTC')))"
    )


def test_a_bounded_integer_is_cast_exactly_to_its_columns_type_others_read_as_they_are():
    insert = json_insert(EveryKind, COLUMNS)
    select = dict(zip(insert.columns, insert.select, strict=True))

    assert select["small"] == "accurateCast(tupleElement(data, 'small'), 'Nullable(UInt8)')"
    assert select["signed"] == "accurateCast(tupleElement(data, 'signed'), 'Nullable(Int8)')"
    assert select["unbounded"] == "tupleElement(data, 'unbounded')"
    assert select["huge"] == "tupleElement(data, 'huge')"
    assert select["text"] == "tupleElement(data, 'text')"
    assert select["schema_version"] == "ifNull(schema_version, 1)"
    assert select["is_bot"] == "ifNull(is_bot, false)"


def test_a_column_the_schema_lacks_is_null():
    class Start(Schema):
        text = Text(required=True)

    insert = json_insert(Start, ("text", "visible_ms"))

    assert insert.select[-2:] == ("tupleElement(data, 'text')", "NULL")
    assert "visible_ms" not in insert.structure


def test_the_statements_stage_the_json_then_insert_with_the_select():
    class Small(Schema):
        text = Text(required=True)

    insert = json_insert(Small, ("text",))

    assert insert.staging_ddl("stage") == (
        f"CREATE TEMPORARY TABLE stage (_offset UInt64, {insert.structure}) ENGINE = Memory"
    )
    assert insert.insert_from("db.t", "stage") == (
        f"INSERT INTO db.t ({', '.join(insert.columns)}) "
        f"SELECT {', '.join(insert.select)} FROM stage "
        "WHERE event_id NOT IN (SELECT event_id FROM db.t "
        "WHERE toDate(timestamp) IN (SELECT toDate(timestamp) FROM stage) "
        "AND user_id IN (SELECT user_id FROM stage) "
        "AND event_id IN (SELECT event_id FROM stage)) "
        "ORDER BY _offset LIMIT 1 BY event_id"
    )


def test_the_engine_loads_generated_tables_with_the_default_mapper_only():
    registry = build_registry(make_plugin_manager(extra_plugins=[RatingPlugin()]))

    assert registry.json_insert("test_rating") is None  # its own mapper and DDL
    for name in ("element_click", "quality_change", "search_filter", "video_complete"):
        assert registry.json_insert(name) is not None
    start, end = registry.json_insert("page_view_start"), registry.json_insert("page_view_end")
    assert start.columns == end.columns  # one table, its columns those of both schemas
    select = dict(zip(start.columns, start.select, strict=True))
    assert select["visible_ms"] == "NULL" and select["url"] == "tupleElement(data, 'url')"


class Small(Schema):
    text = Text(required=True)


def test_a_table_written_by_hand_keeps_the_python_path_even_with_the_generated_columns():
    class Plugin:
        @hookimpl
        def register_event_types(self):
            return [EventType("x", Small, "xs", ddl=table_ddl(Small), example={"text": "a"})]

    registry = build_registry(
        make_plugin_manager(extra_plugins=[Plugin()], load_entry_points=False)
    )

    assert registry.json_insert("x") is None
    assert registry["x"].row({**MESSAGE, "data": {"text": "a"}})["text"] == "a"
