"""A table generated from schemas: its columns, types, comments and keys, and on the real
engine (chDB) the table it makes and the default row it takes."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import pytest
from marshmallow import Schema, fields

from core import (
    UUID,
    Boolean,
    Choice,
    EventType,
    Integer,
    Number,
    Text,
    Timestamp,
    default_row,
    table_ddl,
)
from core.host.ddl import DdlError
from core.host.registry import Registry
from core.message import ENVELOPE_COLUMNS, ENVELOPE_COLUMNS_DDL
from etl.warehouse import Warehouse, render

COLUMN = re.compile(r"^    ([a-z_][a-z0-9_]*) (.+?)(?: COMMENT '(.*)')?,?$", re.MULTILINE)


class RatingSchema(Schema):
    video_id = Text(max_length=128, required=True, metadata={"description": "The rated video."})
    score = Integer(min=1, max=10, required=True)
    source = Choice(("web", "tv"), required=True)
    review = Text(max_length=2000, load_default=None, metadata={"description": "It's 'fine'."})
    screen = Choice(("phone", "tablet"), load_default=None)
    watch_id = UUID(load_default=None)
    watched_at = Timestamp(required=True)
    liked = Boolean(load_default=None)
    progress = Number(min=0, max=1, load_default=None)


EXAMPLE = {
    "video_id": "tt0079944",
    "score": 9,
    "source": "tv",
    "review": "Шедевр",
    "screen": None,
    "watch_id": "7f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8",
    "watched_at": "2026-11-28T09:58:00.250+03:00",
    "liked": True,
    "progress": 0.75,
}


def columns(ddl: str) -> dict[str, tuple[str, str | None]]:
    """Column name -> (type, comment) of the data columns (after the envelope's)."""
    found = {name: (kind, comment) for name, kind, comment in COLUMN.findall(ddl)}
    return {name: spec for name, spec in found.items() if name not in ENVELOPE_COLUMNS}


def test_each_field_kind_has_its_column_in_declaration_order() -> None:
    assert columns(table_ddl(RatingSchema)) == {
        "video_id": ("String", "The rated video."),
        "score": ("UInt8", ""),
        "source": ("LowCardinality(String)", ""),
        "review": ("Nullable(String)", "It''s ''fine''."),
        "screen": ("LowCardinality(Nullable(String))", ""),
        "watch_id": ("Nullable(UUID)", ""),
        "watched_at": ("DateTime64(3, 'UTC')", ""),
        "liked": ("Nullable(Bool)", ""),
        "progress": ("Nullable(Float64)", ""),
    }


def test_the_table_starts_with_the_envelope_and_keeps_one_row_per_event() -> None:
    ddl = table_ddl(RatingSchema)
    assert ddl.startswith(
        "CREATE TABLE IF NOT EXISTS {database}.{table}\n(\n    " + ENVELOPE_COLUMNS_DDL + ",\n"
    )
    assert ddl.endswith(
        "\n)\nENGINE = ReplacingMergeTree\nPARTITION BY toYYYYMM(timestamp)\n"
        "ORDER BY (toDate(timestamp), event, event_id)"
    )


def test_a_comment_is_one_line_with_its_quotes_escaped() -> None:
    class Noted(Schema):
        note = Text(required=True, metadata={"description": "A back\\slash,\n  a 'quote'."})

    assert "note String COMMENT 'A back\\\\slash, a ''quote''.'" in table_ddl(Noted)


def test_a_field_that_may_be_null_or_missing_is_nullable() -> None:
    class Optional(Schema):
        required_but_nullable = Integer(min=0, max=9, required=True, allow_none=True)
        missing_without_default = Integer(min=0, max=9)
        required = Integer(min=0, max=9, required=True)

    assert columns(table_ddl(Optional)) == {
        "required_but_nullable": ("Nullable(UInt8)", ""),
        "missing_without_default": ("Nullable(UInt8)", ""),
        "required": ("UInt8", ""),
    }


def test_a_column_is_named_as_the_loaded_data_names_it() -> None:
    class Renamed(Schema):
        wire = Text(required=True, data_key="wireName", attribute="stored")
        shown = Text(dump_only=True)

    assert list(columns(table_ddl(Renamed))) == ["stored"]


@pytest.mark.parametrize(
    ("order_by", "key"),
    [
        (("video_id",), "(video_id, event_id)"),
        ("video_id", "(video_id, event_id)"),
        (["video_id", "timestamp", "event_id"], "(video_id, timestamp, event_id)"),
        (("source", "toDate(timestamp)"), "(source, toDate(timestamp), event_id)"),
        (("event_id", "video_id"), "(event_id, video_id)"),
    ],
)
def test_the_author_may_choose_the_sort_key_and_event_id_ends_it(order_by, key: str) -> None:
    assert table_ddl(RatingSchema, order_by=order_by).endswith(f"\nORDER BY {key}")


@pytest.mark.parametrize(
    ("order_by", "complaint"),
    [
        (("videoid",), "'videoid', which is not a column"),
        (("review",), "'review', an optional field"),
        ((), "must be column names or expressions"),
        (("video_id", ""), "must be column names or expressions"),
        ((7,), "must be column names or expressions"),
    ],
)
def test_a_sort_key_the_table_cannot_have_is_refused(order_by, complaint: str) -> None:
    with pytest.raises(DdlError, match=re.escape(complaint)):
        table_ddl(RatingSchema, order_by=order_by)


@pytest.mark.parametrize(
    ("field", "complaint"),
    [
        (fields.String(), "marshmallow.fields.String, names no ClickHouse column type"),
        (fields.List(Text()), "marshmallow.fields.List, names no ClickHouse column type"),
        (Integer(min=0, max=2**64), "no ClickHouse integer holds every value from 0 to"),
    ],
)
def test_a_field_without_a_known_column_is_named_with_the_way_out(field, complaint: str) -> None:
    schema = Schema.from_dict({"video_id": Text(), "tags": field}, name="TaggedSchema")
    with pytest.raises(DdlError, match=re.escape(complaint)) as raised:
        table_ddl(schema)
    assert str(raised.value).startswith("field 'tags' of TaggedSchema: ")
    if "names no" in complaint:
        assert "use a field kind of core (Text, Choice, Integer" in str(raised.value)
        assert "table.sql (core.load_ddl)" in str(raised.value)


def test_a_field_named_as_an_envelope_column_is_refused() -> None:
    schema = Schema.from_dict({"timestamp": Timestamp()}, name="Clash")
    with pytest.raises(DdlError, match="field 'timestamp' of Clash: every table has an envelope"):
        table_ddl(schema)


def test_several_schemas_make_one_table_of_all_their_fields() -> None:
    class Start(Schema):
        view_id = UUID(required=True)
        page = Text(required=True, low_cardinality=True)
        url = Text(load_default=None)

    class End(Schema):
        view_id = UUID(required=True)
        page = Text(required=True, low_cardinality=True, metadata={"description": "Page."})
        visible_ms = Integer(min=0, max=1000, required=True)

    assert columns(table_ddl(Start, End, order_by=("view_id", "event"))) == {
        "view_id": ("UUID", ""),
        "page": ("LowCardinality(String)", "Page."),
        "url": ("Nullable(String)", ""),
        # Required at the end, but a start has none.
        "visible_ms": ("Nullable(UInt16)", ""),
    }

    class Retyped(Schema):
        view_id = Text(required=True)

    with pytest.raises(DdlError, match="field 'view_id' of Retyped is String, but UUID"):
        table_ddl(Start, Retyped)
    with pytest.raises(DdlError, match="at least one schema"):
        table_ddl()


def test_an_event_type_without_ddl_gets_the_generated_table() -> None:
    rating = EventType(
        name="rating_submitted",
        schema=RatingSchema,
        table="ratings",
        example=EXAMPLE,
        order_by=("video_id",),
    )
    registry = Registry([("test", [rating])])
    assert rating.table_ddl() == table_ddl(RatingSchema, order_by=("video_id",))
    # The registry's copy holds the DDL in use, its sort key included.
    assert registry["rating_submitted"].ddl == rating.table_ddl()
    assert registry["rating_submitted"].order_by is None
    assert registry.tables()["ratings"].ddl.endswith("ORDER BY (video_id, event_id)")


# On the real engine.


def test_the_generated_table_is_made_and_takes_the_default_row(settings) -> None:
    warehouse = Warehouse.from_settings(settings)
    message = {
        "event_id": str(uuid.uuid4()),
        "event": "rating_submitted",
        "timestamp": "2026-11-28T10:00:00.123Z",
        "user_id": "user-42",
        "identity": "verified",
        "schema_version": 1,
        "data": RatingSchema().load(EXAMPLE),
    }
    row = default_row(message)
    with warehouse.session() as client:
        client.command(f"CREATE DATABASE IF NOT EXISTS {warehouse.database}")
        client.command(render(table_ddl(RatingSchema), warehouse.database, "ratings"))
        client.insert(warehouse.table("ratings"), [list(row.values())], column_names=list(row))
        [stored] = client.query(f"SELECT * FROM {warehouse.table('ratings')}").result_rows
        comments = dict(
            client.query(
                "SELECT name, comment FROM system.columns "
                "WHERE database = {db:String} AND table = 'ratings'",
                parameters={"db": warehouse.database},
            ).result_rows
        )
    assert comments["review"] == "It's 'fine'."
    assert comments["video_id"] == "The rated video."
    assert stored[len(ENVELOPE_COLUMNS) :] == (
        "tt0079944",
        9,
        "tv",
        "Шедевр",
        None,
        uuid.UUID("7f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8"),
        datetime(2026, 11, 28, 6, 58, 0, 250000),  # read back naive, in UTC
        True,
        0.75,
    )
