"""How the engine loads messages of a generated table straight from their JSON: the input
structure and the SELECT of the table's columns, derived once per event type from the
envelope (core.message) and the field kinds' column types (core.host.fields)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from marshmallow import Schema

from core.host.ddl import column_type
from core.message import ENVELOPE_INPUT

#: How the engine reads the JSON: keys it has no column for (``request_id``, the data fields
#: of another version) are passed over; a number is no string, a boolean no number; a
#: missing or null value of a column that is not Nullable is an error, not its type's
#: default (the block then goes through the Python path, which says which field).
READ_SETTINGS = {
    "input_format_skip_unknown_fields": 1,
    "input_format_json_read_numbers_as_strings": 0,
    "input_format_json_read_bools_as_numbers": 0,
    "input_format_json_read_bools_as_strings": 0,
    "input_format_json_read_arrays_as_strings": 0,
    "input_format_json_read_objects_as_strings": 0,
    "date_time_input_format": "best_effort",
    "insert_null_as_default": 0,
}
LOW_CARDINALITY = re.compile(r"LowCardinality\((.*)\)")


@dataclass(frozen=True)
class JsonInsert:
    """The columns an event type's messages fill, the structure the engine reads each
    message's JSON as, and the expression of each column."""

    columns: tuple[str, ...]
    structure: str
    select: tuple[str, ...]

    def query(self, table: str, body: str) -> str:
        """The ``INSERT`` of ``body`` (messages, one JSON object a line) into ``table``.

        The messages travel inside the query, as the data of the ``format`` table function,
        so that chDB and a ClickHouse server take the same statement (chDB has no request
        body for ``input()``); a dollar-quoted string needs no escaping. Run it with
        :data:`READ_SETTINGS` and a ``max_query_size`` above its length.
        """
        tag = _dollar_tag(body)
        return (
            f"INSERT INTO {table} ({', '.join(self.columns)}) "
            f"SELECT {', '.join(self.select)} "
            f"FROM format(JSONEachRow, {_quote(self.structure)}, {tag}{body}{tag})"
        )


def json_insert(schema: type[Schema], columns: Sequence[str]) -> JsonInsert:
    """The :class:`JsonInsert` of the event type whose data ``schema`` describes, into its
    generated table whose columns after the envelope's are ``columns``: the envelope
    columns, then each of ``columns``, read from ``data`` (null if ``schema`` has no such
    field, as in a table event types share).

    Every data field is read as Nullable (one left out of the message is null there);
    the column's own type decides whether null may be stored.
    """
    fields = {}
    for attribute, field in schema().load_fields.items():
        kind = column_type(field)
        plain = LOW_CARDINALITY.fullmatch(kind)
        fields[field.attribute or attribute] = plain[1] if plain else kind
    structure = [f"{name} {kind}" for name, kind, _ in ENVELOPE_INPUT]
    select = [expression for _, _, expression in ENVELOPE_INPUT]
    if fields:
        elements = ", ".join(f"{name} Nullable({kind})" for name, kind in fields.items())
        structure.append(f"data Tuple({elements})")
    select += [
        f"tupleElement(data, {_quote(name)})" if name in fields else "NULL" for name in columns
    ]
    return JsonInsert(
        columns=tuple(name for name, _, _ in ENVELOPE_INPUT) + tuple(columns),
        structure=", ".join(structure),
        select=tuple(select),
    )


def _dollar_tag(body: str) -> str:
    """A ``$tag$`` that ``body`` does not hold, to quote it with."""
    tag, number = "$clickstream$", 0
    while tag in body:
        number += 1
        tag = f"$clickstream{number}$"
    return tag


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
