"""Event types contributed by plugins, collected once at start-up."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from marshmallow import Schema, ValidationError

from core.rows import ENVELOPE_COLUMNS, Row, default_row

EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
#: The ``schema_version`` column is a UInt16.
MAX_VERSION = 65535

RowMapper = Callable[[Mapping[str, Any]], Row]


class RegistryError(RuntimeError):
    """A plugin's contribution is invalid; start-up stops."""


@dataclass(frozen=True)
class EventType:
    """One event name clients may send, and how the pipeline stores it."""

    name: str
    schema: type[Schema]
    table: str
    ddl: str
    example: Mapping[str, Any]
    to_row: RowMapper | None = None
    description: str = ""
    version: int = 1
    plugin: str = field(default="", compare=False)

    def row(self, message: Mapping[str, Any]) -> Row:
        """The table row for an enriched ``message`` whose data the schema has loaded."""
        return (self.to_row or default_row)(message)

    def check(self) -> None:
        """Raise :class:`RegistryError` unless this event type is usable."""
        where = f"event type {self.name!r} of plugin {self.plugin or '?'}"
        if not isinstance(self.name, str) or not EVENT_NAME.match(self.name):
            raise RegistryError(f"{where}: the name must match {EVENT_NAME.pattern}")
        if not (isinstance(self.schema, type) and issubclass(self.schema, Schema)):
            raise RegistryError(f"{where}: schema must be a marshmallow Schema class")
        if not isinstance(self.table, str) or not TABLE_NAME.match(self.table):
            raise RegistryError(f"{where}: the table must match {TABLE_NAME.pattern}")
        if "{table}" not in self.ddl or "CREATE TABLE IF NOT EXISTS" not in self.ddl:
            raise RegistryError(
                f"{where}: ddl must be 'CREATE TABLE IF NOT EXISTS {{database}}.{{table}} ...'"
            )
        missing = [c for c in ENVELOPE_COLUMNS if not re.search(rf"[(,\s]{c}\s", self.ddl)]
        if missing:
            raise RegistryError(
                f"{where}: ddl lacks the envelope columns {missing}: start the columns "
                "with {envelope_columns} (core.ddl.load_ddl fills it in)"
            )
        if (
            isinstance(self.version, bool)
            or not isinstance(self.version, int)
            or not 1 <= self.version <= MAX_VERSION
        ):
            raise RegistryError(f"{where}: version must be an integer from 1 to {MAX_VERSION}")
        if self.to_row is not None and not callable(self.to_row):
            raise RegistryError(f"{where}: to_row must be callable")
        try:
            self.schema().load(dict(self.example))
        except ValidationError as error:
            raise RegistryError(f"{where}: its example is invalid: {error.messages}") from None


class Registry:
    """The event types of all plugins, by name; refuses conflicting claims."""

    def __init__(self, contributions: Iterable[tuple[str, Iterable[EventType]]]) -> None:
        self._types: dict[str, EventType] = {}
        self._schemas: dict[str, Schema] = {}
        tables: dict[str, EventType] = {}
        for plugin, event_types in contributions:
            staged = [_owned(event_type, plugin) for event_type in event_types]
            for event_type in staged:
                event_type.check()
            for event_type in staged:
                self._add(event_type, tables)

    def _add(self, event_type: EventType, tables: dict[str, EventType]) -> None:
        claimed = self._types.get(event_type.name)
        if claimed is not None:
            raise RegistryError(
                f"event {event_type.name!r} is claimed by two plugins: "
                f"{claimed.plugin} and {event_type.plugin}"
            )
        sharing = tables.get(event_type.table)
        if sharing is not None and (
            sharing.plugin != event_type.plugin or sharing.ddl != event_type.ddl
        ):
            raise RegistryError(
                f"table {event_type.table!r} is claimed by {sharing.plugin} "
                f"({sharing.name}) and {event_type.plugin} ({event_type.name}) "
                "with different definitions"
            )
        tables.setdefault(event_type.table, event_type)
        self._types[event_type.name] = event_type
        self._schemas[event_type.name] = event_type.schema()

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __getitem__(self, name: str) -> EventType:
        return self._types[name]

    def __iter__(self):
        return iter(sorted(self._types.values(), key=lambda event_type: event_type.name))

    def __len__(self) -> int:
        return len(self._types)

    @property
    def names(self) -> list[str]:
        return sorted(self._types)

    def schema(self, name: str) -> Schema:
        """A shared schema instance for ``name`` (marshmallow schemas are reusable)."""
        return self._schemas[name]

    def tables(self) -> dict[str, EventType]:
        """One event type per table, to read the table's DDL from."""
        by_table: dict[str, EventType] = {}
        for event_type in self:
            by_table.setdefault(event_type.table, event_type)
        return by_table


def _owned(event_type: EventType, plugin: str) -> EventType:
    if not isinstance(event_type, EventType):
        raise RegistryError(f"plugin {plugin} returned {event_type!r}, not an EventType")
    return replace(event_type, plugin=plugin)
