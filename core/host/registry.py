"""What plugins contribute (event types, settings, views, reports), collected once at start-up."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from marshmallow import Schema, ValidationError

from core.config import PluginSetting, Settings
from core.host.ddl import DdlError, OrderBy, data_columns, table_ddl
from core.host.fastload import Load, compile_load
from core.host.json_load import JsonInsert, json_insert
from core.message import ENVELOPE_COLUMNS, MAX_VERSION, envelope_columns

EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
SETTING_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
REPORT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
#: Reports of clickstream itself (etl/reports.py); a plugin's report cannot take these names.
BUILT_IN_REPORTS = frozenset({"counts", "quality"})

Row = dict[str, Any]
RowMapper = Callable[[Mapping[str, Any]], Row]


def default_row(message: Mapping[str, Any]) -> Row:
    """Envelope columns plus one column per ``data`` field, under the field's name.

    The columns of the table generated from the schema (core.host.ddl.table_ddl). In a
    hand-written table, declare the columns of optional fields ``Nullable``, or give
    them a ``DEFAULT`` and drop ``None`` in your own mapper.
    """
    return {**envelope_columns(message), **message["data"]}


class RegistryError(RuntimeError):
    """A plugin's contribution is invalid; start-up stops."""


class MapperError(ValueError):
    """A plugin's ``to_row`` raised, or returned something other than a dict of columns."""


@dataclass(frozen=True)
class EventType:
    """One event name clients may send, and how the pipeline stores it."""

    name: str
    schema: type[Schema]
    table: str
    #: The table's DDL; None: generated from ``schema``. A registry's copy holds the DDL in use.
    ddl: str | None = None
    #: Required; it has a default only so that ``ddl`` may be left out before it.
    example: Mapping[str, Any] | None = None
    to_row: RowMapper | None = None
    description: str = ""
    version: int = 1
    #: The sort key of the generated table (see core.host.ddl.table_ddl); in a registry's copy
    #: it is part of ``ddl``, and None.
    order_by: OrderBy | None = None
    plugin: str = field(default="", compare=False)
    #: Set in a registry's copy: True when its table is generated from the schemas (no
    #: ``ddl`` given), so that its columns are the fields' own.
    generated: bool = field(default=False, compare=False)
    #: Set in a registry's copy of a generated table's event type: the table's columns after
    #: the envelope's, every one of which its default row fills (None where its data has
    #: none, as when event types share the table).
    columns: tuple[str, ...] = field(default=(), compare=False)

    def table_ddl(self) -> str:
        """The table's DDL: ``ddl`` as written, else generated from ``schema`` and ``order_by``.

        Raises :class:`~core.host.ddl.DdlError` if the schema has a field of unknown column type.
        """
        if self.ddl is not None:
            return self.ddl
        return table_ddl(self.schema, order_by=self.order_by)

    def row(self, message: Mapping[str, Any]) -> Row:
        """The table row for an enriched ``message`` whose data the schema has loaded."""
        if self.to_row is not None:
            return self.to_row(message)
        if self.columns:
            data = message["data"]
            return {**envelope_columns(message), **{name: data.get(name) for name in self.columns}}
        return default_row(message)

    def load_row(self, message: Mapping[str, Any], schema: Schema | None = None) -> Row:
        """Validate ``message``'s data again (with ``schema``, an instance of ``self.schema``,
        if given) and map it to its row: what the ETL does with a message it does not leave
        to the engine.

        Raises marshmallow's ``ValidationError`` if the data does not pass, and
        :class:`MapperError` if ``to_row`` raises or returns something other than a dict.
        """
        data = (schema or self.schema()).load(message["data"])
        try:
            row = self.row({**message, "data": data})
        except Exception as error:  # a plugin's mapper is third-party code
            raise MapperError(f"to_row raised {type(error).__name__}: {error}") from error
        if not isinstance(row, Mapping):
            raise MapperError(f"to_row returned {type(row).__name__}, not a dict of column values")
        return dict(row)

    def check(self) -> None:
        """Raise :class:`RegistryError` unless this event type is usable."""
        where = f"event type {self.name!r} of plugin {self.plugin or '?'}"
        if not isinstance(self.name, str) or not EVENT_NAME.fullmatch(self.name):
            raise RegistryError(f"{where}: the name must match {EVENT_NAME.pattern}")
        if not (isinstance(self.schema, type) and issubclass(self.schema, Schema)):
            raise RegistryError(f"{where}: schema must be a marshmallow Schema class")
        if not isinstance(self.table, str) or not TABLE_NAME.fullmatch(self.table):
            raise RegistryError(f"{where}: the table must match {TABLE_NAME.pattern}")
        try:
            ddl = self.table_ddl()
        except DdlError as error:
            raise RegistryError(f"{where}: its table cannot be generated: {error}") from None
        if self.ddl is not None and self.order_by is not None:
            raise RegistryError(
                f"{where}: order_by is the sort key of a generated table; "
                "a hand-written ddl has its own ORDER BY"
            )
        if (
            not isinstance(ddl, str)
            or "{table}" not in ddl
            or "CREATE TABLE IF NOT EXISTS" not in ddl
        ):
            raise RegistryError(
                f"{where}: ddl must be 'CREATE TABLE IF NOT EXISTS {{database}}.{{table}} ...'"
            )
        missing = [c for c in ENVELOPE_COLUMNS if not re.search(rf"[(,\s]{c}\s", ddl)]
        if missing:
            raise RegistryError(
                f"{where}: ddl lacks the envelope columns {missing}: start the columns "
                "with {envelope_columns} (core.host.ddl.load_ddl fills it in)"
            )
        if (
            isinstance(self.version, bool)
            or not isinstance(self.version, int)
            or not 1 <= self.version <= MAX_VERSION
        ):
            raise RegistryError(f"{where}: version must be an integer from 1 to {MAX_VERSION}")
        if self.to_row is not None and not callable(self.to_row):
            raise RegistryError(f"{where}: to_row must be callable")
        if not isinstance(self.example, Mapping):
            raise RegistryError(f"{where}: example is required: a valid data object")
        try:
            self.schema().load(dict(self.example))
        except ValidationError as error:
            raise RegistryError(f"{where}: its example is invalid: {error.messages}") from None


def is_select(sql: object) -> bool:
    """Whether ``sql`` is one query (``SELECT`` or ``WITH``), after any ``--`` comment lines."""
    if not isinstance(sql, str):
        return False
    lines = [line.strip() for line in sql.splitlines()]
    code = [line for line in lines if line and not line.startswith("--")]
    return bool(code) and code[0].upper().startswith(("SELECT", "WITH"))


@dataclass(frozen=True)
class View:
    """A SQL view over a plugin's tables, which the ETL creates and keeps current."""

    name: str
    query: str
    tables: tuple[str, ...]
    description: str = ""
    plugin: str = field(default="", compare=False)

    def check(self, tables: Iterable[str]) -> None:
        where = f"view {self.name!r} of plugin {self.plugin or '?'}"
        if not isinstance(self.name, str) or not TABLE_NAME.fullmatch(self.name):
            raise RegistryError(f"{where}: the name must match {TABLE_NAME.pattern}")
        if not is_select(self.query):
            raise RegistryError(f"{where}: query must be a SELECT (the ETL makes the view of it)")
        unknown = sorted(set(self.tables) - set(tables))
        if not self.tables or unknown:
            raise RegistryError(
                f"{where}: tables must name the event tables it reads; unknown: {unknown}"
            )


@dataclass(frozen=True)
class Report:
    """A report over the warehouse: ``clickstream report NAME`` prints it, the ETL exports
    its figures as metrics, and the quality report lists them."""

    name: str
    description: str
    query: str
    figures: str = ""
    needs: tuple[str, ...] = ()
    plugin: str = field(default="", compare=False)

    def check(self) -> None:
        where = f"report {self.name!r} of plugin {self.plugin or '?'}"
        if not isinstance(self.name, str) or not REPORT_NAME.fullmatch(self.name):
            raise RegistryError(f"{where}: the name must match {REPORT_NAME.pattern}")
        if self.name in BUILT_IN_REPORTS:
            raise RegistryError(f"{where}: {self.name!r} is a built-in report")
        for label, sql in (("query", self.query), ("figures", self.figures)):
            if sql and not is_select(sql):
                raise RegistryError(f"{where}: {label} must be a SELECT")
        if not self.query:
            raise RegistryError(f"{where}: query is required")


@dataclass(frozen=True)
class TrackerScript:
    """JavaScript the browser tracker runs, sending a plugin's events from web pages."""

    name: str
    source: str
    description: str = ""
    plugin: str = field(default="", compare=False)

    def check(self) -> None:
        where = f"tracker script {self.name!r} of plugin {self.plugin or '?'}"
        if not isinstance(self.name, str) or not EVENT_NAME.fullmatch(self.name):
            raise RegistryError(f"{where}: the name must match {EVENT_NAME.pattern}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise RegistryError(f"{where}: source must be the script's JavaScript")


class Registry:
    """The event types of all plugins, by name; refuses conflicting claims."""

    def __init__(
        self,
        contributions: Iterable[tuple[str, Iterable[EventType]]],
        *,
        views: Iterable[tuple[str, Iterable[View]]] = (),
        reports: Iterable[tuple[str, Iterable[Report]]] = (),
        settings: Iterable[tuple[str, Iterable[PluginSetting]]] = (),
        tracker_scripts: Iterable[tuple[str, Iterable[TrackerScript]]] = (),
    ) -> None:
        self._types: dict[str, EventType] = {}
        self._schemas: dict[str, Schema] = {}
        self._loads: dict[str, Load] = {}
        self._json_inserts: dict[str, JsonInsert | None] = {}
        tables: dict[str, EventType] = {}
        for plugin, event_types in contributions:
            staged = [_owned(event_type, plugin, EventType) for event_type in event_types]
            for event_type in staged:
                event_type.check()
            generated = _generated_tables(staged)
            for event_type in staged:
                ddl, columns = generated.get(event_type.table, (None, ()))
                if event_type.ddl is not None:
                    ddl, columns = None, ()
                resolved = replace(
                    event_type,
                    ddl=ddl or event_type.table_ddl(),
                    order_by=None,
                    generated=ddl is not None,
                    columns=columns,
                )
                self._add(resolved, tables)
        #: Settings plugins read, by name (docs/configuration.md lists them).
        self.settings: dict[str, PluginSetting] = _unique(settings, PluginSetting, "setting")
        #: Views over event tables, by name, which the ETL keeps current.
        self.views: dict[str, View] = _unique(views, View, "view", self.tables())
        #: Reports of plugins, by name (beside the built-in ones).
        self.reports: dict[str, Report] = _unique(reports, Report, "report")
        #: Scripts the browser tracker runs, by name.
        self.tracker_scripts: dict[str, TrackerScript] = _unique(
            tracker_scripts, TrackerScript, "tracker script"
        )

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
        self._loads[event_type.name] = compile_load(self._schemas[event_type.name])
        by_engine = event_type.generated and event_type.to_row is None
        self._json_inserts[event_type.name] = (
            json_insert(event_type.schema, event_type.columns) if by_engine else None
        )

    def check_settings(self, settings: Settings) -> None:
        """Parse every plugin setting's value now, so a bad one stops start-up."""
        for setting in self.settings.values():
            settings.plugin_value(setting)

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

    def fast_load(self, name: str) -> Load:
        """The compiled load of ``name``'s schema (core/host/fastload.py): the loaded data, or
        None when the shared :meth:`schema` must decide (and name what is wrong)."""
        return self._loads[name]

    def json_insert(self, name: str) -> JsonInsert | None:
        """How the engine loads ``name``'s messages from their JSON, derived once: None for an
        event type with a mapper of its own or a hand-written table (the ETL maps those)."""
        return self._json_inserts[name]

    def tables(self) -> dict[str, EventType]:
        """One event type per table, to read the table's DDL from."""
        by_table: dict[str, EventType] = {}
        for event_type in self:
            by_table.setdefault(event_type.table, event_type)
        return by_table


def _generated_tables(event_types: list[EventType]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The DDL and data columns of each table of one plugin that its event types leave to
    be generated: from the schemas of all of them, so that event types sharing a table
    share its columns."""
    by_table: dict[str, list[EventType]] = {}
    for event_type in event_types:
        if event_type.ddl is None:
            by_table.setdefault(event_type.table, []).append(event_type)
    ddls = {}
    for table, sharing in by_table.items():
        keys = {repr(event_type.order_by) for event_type in sharing}
        if len(keys) > 1:
            raise RegistryError(
                f"table {table!r} is generated for {[e.name for e in sharing]} with different "
                "order_by: give them one sort key"
            )
        schemas = [e.schema for e in sharing]
        try:
            ddls[table] = (
                table_ddl(*schemas, order_by=sharing[0].order_by),
                data_columns(*schemas),
            )
        except DdlError as error:
            raise RegistryError(f"table {table!r} cannot be generated: {error}") from None
    return ddls


def _owned(contribution, plugin: str, kind: type):
    if not isinstance(contribution, kind):
        raise RegistryError(f"plugin {plugin} returned {contribution!r}, not a {kind.__name__}")
    return replace(contribution, plugin=plugin)


def _check_setting(setting: PluginSetting) -> None:
    where = f"setting {setting.name!r} of plugin {setting.plugin or '?'}"
    if not isinstance(setting.name, str) or not SETTING_NAME.fullmatch(setting.name):
        raise RegistryError(f"{where}: the name must match {SETTING_NAME.pattern}")
    if not isinstance(setting.default, int | float | str | bool):
        raise RegistryError(f"{where}: the default must be an int, float, str or bool")


def _unique(contributions, kind: type, what: str, *check_args) -> dict:
    """Each plugin's contributions of ``kind``, checked, by name; a name claimed twice stops."""
    found: dict = {}
    for plugin, items in contributions:
        for item in [_owned(item, plugin, kind) for item in items]:
            _check_setting(item) if kind is PluginSetting else item.check(*check_args)
            claimed = found.get(item.name)
            if claimed is not None:
                raise RegistryError(
                    f"{what} {item.name!r} is claimed by two plugins: "
                    f"{claimed.plugin} and {item.plugin}"
                )
            found[item.name] = item
    return found
