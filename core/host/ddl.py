"""A plugin's ClickHouse table: generated from its schema, or read from its ``table.sql``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib.resources import files

from marshmallow import Schema
from marshmallow.fields import Field

from core.message import ENVELOPE_COLUMNS, ENVELOPE_COLUMNS_DDL

#: What every generated table is: one row per ``event_id`` (Kafka delivers at least once).
ENGINE = "ReplacingMergeTree"
PARTITION_BY = "toYYYYMM(timestamp)"
#: The sort key unless the author chooses one: by day, then event type, as analysts filter.
DEFAULT_ORDER_BY = ("toDate(timestamp)", "event", "event_id")
#: The column that makes a sort key unique per event; appended to one that lacks it.
UNIQUE_KEY = "event_id"
COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

OrderBy = str | Sequence[str]


class DdlError(ValueError):
    """A table cannot be generated from these schemas; the message says which field and why."""


def load_ddl(package: str) -> str:
    """``table.sql`` of ``package`` (pass the plugin's ``__name__``), envelope columns filled in.

    Write ``{envelope_columns},`` as the first column of the table; ``{database}`` and
    ``{table}`` are left for the ETL to fill.
    """
    ddl = files(package).joinpath("table.sql").read_text(encoding="utf-8")
    return ddl.replace("{envelope_columns}", ENVELOPE_COLUMNS_DDL)


def table_ddl(*schemas: type[Schema], order_by: OrderBy | None = None) -> str:
    """The ``CREATE TABLE`` of the event types whose data ``schemas`` describe.

    The envelope columns, then one column per field in declaration order (fields of
    later schemas that earlier ones lack come after), each of the type its field kind
    names: ``Nullable`` when the field may be missing or null, or when one of the
    schemas lacks it, and commented with the field's ``metadata["description"]``.
    ``order_by`` is the sort key (expressions or column names; ``event_id`` is added
    last unless it is in it), by default ``(toDate(timestamp), event, event_id)``.
    ``{database}`` and ``{table}`` are left for the ETL to fill.
    """
    if not schemas:
        raise DdlError("table_ddl needs at least one schema")
    columns = _columns(schemas)
    key = _sort_key(order_by, columns)
    lines = [f"    {ENVELOPE_COLUMNS_DDL}"]
    for name, (kind, nullable, comment) in columns.items():
        line = f"    {name} {_nullable(kind) if nullable else kind}"
        lines.append(f"{line} COMMENT {_quote(comment)}" if comment else line)
    return (
        "CREATE TABLE IF NOT EXISTS {database}.{table}\n(\n"
        + ",\n".join(lines)
        + f"\n)\nENGINE = {ENGINE}\nPARTITION BY {PARTITION_BY}\nORDER BY ({', '.join(key)})"
    )


def data_columns(*schemas: type[Schema]) -> tuple[str, ...]:
    """The columns after the envelope's of the table :func:`table_ddl` generates, in order."""
    return tuple(_columns(schemas))


def column_type(field: Field) -> str:
    """The ClickHouse type of ``field``'s column, before any ``Nullable``."""
    named = getattr(field, "column_type", None)
    if not callable(named):
        raise DdlError(
            f"its kind, {type(field).__module__}.{type(field).__name__}, names no ClickHouse "
            "column type: use a field kind of core (Text, Choice, Integer, Number, Boolean, "
            "UUID, Timestamp), or write the table yourself as table.sql (core.load_ddl)"
        )
    try:
        return named()
    except ValueError as error:
        raise DdlError(str(error)) from None


def _columns(schemas: Sequence[type[Schema]]) -> dict[str, tuple[str, bool, str]]:
    """Column name -> (type, nullable, comment) over every schema, in declaration order."""
    columns: dict[str, tuple[str, bool, str]] = {}
    present: list[set[str]] = []
    for schema in schemas:
        names = set()
        for attribute, field in schema().load_fields.items():
            name = field.attribute or attribute
            where = f"field {name!r} of {schema.__name__}"
            if not COLUMN_NAME.match(name):
                raise DdlError(f"{where}: {name!r} cannot be a column name")
            if name in ENVELOPE_COLUMNS:
                raise DdlError(f"{where}: every table has an envelope column {name!r}; rename it")
            try:
                kind = column_type(field)
            except DdlError as error:
                raise DdlError(f"{where}: {error}") from None
            nullable = not field.required or bool(field.allow_none)
            comment = str(field.metadata.get("description", ""))
            if name in columns:
                known, was_nullable, known_comment = columns[name]
                if known != kind:
                    raise DdlError(f"{where} is {kind}, but {known} in an earlier schema")
                columns[name] = (kind, nullable or was_nullable, known_comment or comment)
            else:
                columns[name] = (kind, nullable, comment)
            names.add(name)
        present.append(names)
    # A column some event types lack is null in their rows.
    return {
        name: (kind, nullable or any(name not in names for names in present), comment)
        for name, (kind, nullable, comment) in columns.items()
    }


def _sort_key(order_by: OrderBy | None, columns: dict[str, tuple[str, bool, str]]) -> list[str]:
    if order_by is None:
        return list(DEFAULT_ORDER_BY)
    key = [order_by] if isinstance(order_by, str) else list(order_by)
    if not key or not all(isinstance(part, str) and part.strip() for part in key):
        raise DdlError(f"order_by must be column names or expressions, not {order_by!r}")
    for part in key:
        if COLUMN_NAME.match(part) and part not in ENVELOPE_COLUMNS:
            if part not in columns:
                raise DdlError(f"order_by names {part!r}, which is not a column of the table")
            if columns[part][1]:
                raise DdlError(
                    f"order_by names {part!r}, an optional field: ClickHouse cannot sort by a "
                    "Nullable column; make the field required or sort by another"
                )
    return key if UNIQUE_KEY in key else [*key, UNIQUE_KEY]


def _nullable(kind: str) -> str:
    # ClickHouse nests them this way round: LowCardinality(Nullable(String)).
    inner = re.fullmatch(r"LowCardinality\((.*)\)", kind)
    return f"LowCardinality(Nullable({inner[1]}))" if inner else f"Nullable({kind})"


def _quote(text: str) -> str:
    """``text`` as a one-line ClickHouse string literal."""
    one_line = " ".join(text.split())
    return "'" + one_line.replace("\\", "\\\\").replace("'", "''") + "'"
