"""How the engine loads messages of a generated table straight from their JSON: the input
structure and the SELECT of the table's columns, derived once per event type from the
envelope (core.message) and the field kinds' column types (core.host.fields)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from marshmallow import Schema

from core.host.ddl import column_type
from core.host.fields import INT64, INTEGER_TYPES, UINT64
from core.message import ENVELOPE_INPUT

#: How the engine reads the JSON: keys it has no column for (``request_id``) are passed
#: over; a number is no string, a boolean no number.
READ_SETTINGS = {
    "input_format_skip_unknown_fields": 1,
    "input_format_json_read_numbers_as_strings": 0,
    "input_format_json_read_bools_as_numbers": 0,
    "input_format_json_read_bools_as_strings": 0,
    "input_format_json_read_arrays_as_strings": 0,
    "input_format_json_read_objects_as_strings": 0,
    "date_time_input_format": "best_effort",
}
#: How the rows go into the event table: a missing or null value of a column that is not
#: Nullable is an error, not its type's default (the block then goes through the Python
#: path, which says which field).
INSERT_SETTINGS = {"insert_null_as_default": 0}
LOW_CARDINALITY = re.compile(r"LowCardinality\((.*)\)")
#: The staging column the loader fills with each message's offset in its log (prepended to
#: its JSON), from which the ETL's ledger records the deliveries.
OFFSET = "_offset"
INTEGERS = frozenset(name for name, _, _ in INTEGER_TYPES)
WIDEST = frozenset({INT64[0], UINT64[0]})


@dataclass(frozen=True)
class JsonInsert:
    """The columns an event type's messages fill, the structure the engine reads each
    message's JSON as, and the expression of each column.

    The messages go into a temporary table of that structure (an insert of their JSON as
    it is, which chDB and a ClickHouse server take alike; chDB gives ``input()`` no data),
    and from there into the event table, where the deduplication token applies.
    """

    columns: tuple[str, ...]
    structure: str
    select: tuple[str, ...]

    def staging_ddl(self, name: str) -> str:
        """The ``CREATE`` of the session's temporary table ``name`` the messages go into."""
        return f"CREATE TEMPORARY TABLE {name} ({OFFSET} UInt64, {self.structure}) ENGINE = Memory"

    def insert_from(self, table: str, staging: str) -> str:
        """The ``INSERT`` into ``table`` of the rows of the messages in ``staging``, each
        event once: none that ``table`` already holds, and of two messages of one event (the
        API published it twice: a send that timed out yet reached Kafka, then spooled), the
        first. Both copies carry one server ``timestamp`` and ``user_id``, which narrow the
        look-up to the sort key's first columns."""
        return (
            f"INSERT INTO {table} ({', '.join(self.columns)}) "
            f"SELECT {', '.join(self.select)} FROM {staging} "
            f"WHERE event_id NOT IN (SELECT event_id FROM {table} "
            f"WHERE toDate(timestamp) IN (SELECT toDate(timestamp) FROM {staging}) "
            f"AND user_id IN (SELECT user_id FROM {staging}) "
            f"AND event_id IN (SELECT event_id FROM {staging})) "
            f"ORDER BY {OFFSET} LIMIT 1 BY event_id"
        )


def json_insert(schema: type[Schema], columns: Sequence[str]) -> JsonInsert:
    """The :class:`JsonInsert` of the event type whose data ``schema`` describes, into its
    generated table whose columns after the envelope's are ``columns``: the envelope
    columns, then each of ``columns``, read from ``data`` (null if ``schema`` has no such
    field, as in a table event types share).

    Every data field is read as Nullable (one left out of the message is null there); the
    column's own type decides whether null may be stored. An integer is read as a 64-bit
    one and cast to its column's type exactly, so that a value outside it is an error,
    not a wrapped number.
    """
    fields: dict[str, tuple[str, str]] = {}
    for attribute, field in schema().load_fields.items():
        name = field.attribute or attribute
        kind = column_type(field)
        plain = LOW_CARDINALITY.fullmatch(kind)
        kind = plain[1] if plain else kind
        element = f"tupleElement(data, {_quote(name)})"
        if kind in INTEGERS and kind not in WIDEST:
            fields[name] = ("Int64", f"accurateCast({element}, {_quote(f'Nullable({kind})')})")
        else:
            fields[name] = (kind, element)
    structure = [f"{name} {kind}" for name, kind, _ in ENVELOPE_INPUT]
    select = [expression for _, _, expression in ENVELOPE_INPUT]
    if fields:
        elements = ", ".join(f"{name} Nullable({kind})" for name, (kind, _) in fields.items())
        structure.append(f"data Tuple({elements})")
    select += [fields[name][1] if name in fields else "NULL" for name in columns]
    return JsonInsert(
        columns=tuple(name for name, _, _ in ENVELOPE_INPUT) + tuple(columns),
        structure=", ".join(structure),
        select=tuple(select),
    )


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
