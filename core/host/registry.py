"""What plugins contribute (event types, settings, views, reports), collected once at start-up."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from marshmallow import Schema, ValidationError

from core.config import PluginSetting, Settings
from core.host.ddl import DdlError, OrderBy, table_ddl
from core.host.fastload import Load, compile_load
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

    def table_ddl(self) -> str:
        """The table's DDL: ``ddl`` as written, else generated from ``schema`` and ``order_by``.

        Raises :class:`~core.host.ddl.DdlError` if the schema has a field of unknown column type.
        """
        if self.ddl is not None:
            return self.ddl
        return table_ddl(self.schema, order_by=self.order_by)

    def row(self, message: Mapping[str, Any]) -> Row:
        """The table row for an enriched ``message`` whose data the schema has loaded."""
        return (self.to_row or default_row)(message)

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
        tables: dict[str, EventType] = {}
        for plugin, event_types in contributions:
            staged = [_owned(event_type, plugin, EventType) for event_type in event_types]
            for event_type in staged:
                event_type.check()
            for event_type in staged:
                resolved = replace(event_type, ddl=event_type.table_ddl(), order_by=None)
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

    def tables(self) -> dict[str, EventType]:
        """One event type per table, to read the table's DDL from."""
        by_table: dict[str, EventType] = {}
        for event_type in self:
            by_table.setdefault(event_type.table, event_type)
        return by_table


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
