"""Checks for a plugin's own tests: clickstream would start with it, and its events reach a table.

For pytest in a plugin's repository, with no clickstream service running: the API is the
real one (Flask's test client, Kafka and the auth service replaced by stand-ins), and the
table is made by the real ClickHouse engine, chDB, in a temporary directory::

    import clickstream_trailer_share
    from core.testing import check_plugin

    def test_clickstream_loads_it_and_stores_its_example():
        check_plugin(clickstream_trailer_share)

Exported:

* ``check_plugin(plugin)``: every check, for each event type of ``plugin`` (the module
  holding its ``@hookimpl`` functions, or an object with them); returns a
  :class:`CheckedPlugin` for further checks of the plugin's own (``row``, ``stored``,
  ``assert_refused``).
* ``CheckedPlugin``: what the checks found (``registry``, ``rows``, ``columns``), and
  what a test sends through it (``example``, ``post``, ``publish``, ``row``, ``stored``,
  ``assert_refused``).
* ``Column``: a table's column as ClickHouse made it (``name``, ``type``, ``default_kind``).
* ``PluginCheckError``: an ``AssertionError`` saying what the plugin should change.

chDB lets a process hold one data directory at a time: each check opens a new one and
closes it, so call them outside any open warehouse session of the same process.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import clickhouse_connect
import orjson
import pluggy
from clickhouse_connect.driver.client import Client
from marshmallow import ValidationError

from core.api import create_app
from core.config import Settings
from core.host.plugin_manager import build_registry, describe_plugin, make_plugin_manager
from core.host.registry import EventType, MapperError, Registry, RegistryError, Row
from core.message import ANONYMOUS, MESSAGE_KEYS, Identity, decode, envelope_error

__all__ = ["CheckedPlugin", "Column", "PluginCheckError", "check_plugin"]

#: The warehouse database of the temporary chDB directory.
DATABASE = "clickstream"
#: Column kinds a row cannot give a value to: ClickHouse computes them.
COMPUTED = frozenset({"MATERIALIZED", "ALIAS", "EPHEMERAL"})


class PluginCheckError(AssertionError):
    """The plugin would not work in clickstream; the message says what to change."""


@dataclass(frozen=True)
class Column:
    """A column of an event table, as ClickHouse describes it once the table is made."""

    name: str
    type: str
    #: ``DEFAULT``, ``MATERIALIZED``, ``ALIAS`` or ``EPHEMERAL``; empty without a default.
    default_kind: str

    @property
    def insertable(self) -> bool:
        return self.default_kind not in COMPUTED


class _Identity:
    """The auth service's stand-in: no token is anonymous, a token is its own user id."""

    def resolve(self, token: str | None) -> Identity:
        return ANONYMOUS if token is None else Identity(token, "verified")


class _Publisher:
    """Kafka's stand-in: keeps what the API published, and acknowledges it."""

    topic = "clickstream-test"

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, key: str, value: bytes) -> None:
        self.sent.append((key, value))

    def publish_many(self, messages: list[tuple[str, bytes]]) -> list[None]:
        self.sent.extend(messages)
        return [None] * len(messages)

    def close(self) -> None:
        """Nothing to close: no connection was opened."""


def check_plugin(plugin: object) -> CheckedPlugin:
    """Run clickstream's checks on ``plugin``; raise :class:`PluginCheckError` at the first failure.

    1. Start-up: a registry is built from the plugin alone through the real plugin
       manager (hook names, event and table names, schema, a table that can be
       generated or a ``table.sql`` with the envelope columns, a valid example,
       version), then together with the plugins installed here (no name taken twice).
    2. The API: ``GET /openapi.json`` documents each event type, and each example (and
       the example without its optional fields) is accepted by ``POST /api/v1/events``
       with ``202`` and published unchanged, in the envelope.
    3. The ETL: each published message is validated again and mapped to a row by the
       event type's ``to_row``; the row's keys are the table's columns, in order.
    4. The warehouse: each table is created from its DDL (generated, or the plugin's
       ``table.sql``) in a fresh chDB directory, the rows are inserted and read back,
       and every value comes back as the row held it.
    """
    name = describe_plugin(plugin)
    checked = CheckedPlugin(plugin, _registry_alone(plugin, name))
    _check_with_installed(plugin, name)
    checked._check_documented()
    samples = [
        (event_type, data, _map(event_type, checked.publish(event_type.name, data)))
        for event_type in checked.registry
        for data in _samples(event_type)
    ]
    with _warehouse() as client:
        for table, event_type in checked.registry.tables().items():
            checked.columns[table] = _create(client, event_type)
        for event_type, data, row in samples:
            _check_columns(event_type, row, checked.columns[event_type.table], data)
            _store(client, event_type, row, checked.columns[event_type.table])
            # The first sample of each event type is its example.
            checked.rows.setdefault(event_type.name, row)
    return checked


class CheckedPlugin:
    """A plugin that passed :func:`check_plugin`: its registry, and the API it runs in.

    ``rows`` holds each event type's example as a row, ``columns`` each table's columns
    (``Column(name, type, default_kind)``) as ClickHouse made them.
    """

    def __init__(self, plugin: object, registry: Registry) -> None:
        """``registry`` is that of ``plugin`` alone; :func:`check_plugin` makes both."""
        self.plugin = plugin
        self.name = describe_plugin(plugin)
        self.registry = registry
        self.rows: dict[str, Row] = {}
        self.columns: dict[str, list[Column]] = {}
        self._publisher = _Publisher()
        self._client = create_app(
            Settings(),
            make_plugin_manager([plugin], load_entry_points=False),
            identity=_Identity(),
            publisher=self._publisher,
        ).test_client()

    def example(self, event: str, **changes: Any) -> dict[str, Any]:
        """The example of ``event`` with ``changes``; a change to ``...`` removes the field."""
        data = {**self._event_type(event).example, **changes}
        return {key: value for key, value in data.items() if value is not ...}

    def post(self, event: str, data: Any, *, token: str | None = None) -> tuple[int, Any]:
        """``POST /api/v1/events`` of ``{"event", "token", "data"}``: the status and JSON body."""
        answer = self._client.post(
            "/api/v1/events", json={"event": event, "token": token, "data": data}
        )
        return answer.status_code, answer.get_json(silent=True)

    def publish(self, event: str, data: Any, *, token: str | None = None) -> dict[str, Any]:
        """The message the API publishes for ``data``, which it must accept (``202``).

        A token stands for the user of that id: ``token="user-42"`` is ``user_id``
        ``user-42``, verified; without one the event is anonymous.
        """
        event_type = self._event_type(event)
        where = _where(event_type)
        self._publisher.sent.clear()
        status, body = self.post(event, data, token=token)
        if status != 202:
            raise PluginCheckError(
                f"{where}: POST /api/v1/events answered {status}, not 202, for data {data!r}: "
                f"{body}\n(publish, row and stored need data that {event_type.schema.__name__} "
                "accepts; assert_refused checks a refusal)"
            )
        if len(self._publisher.sent) != 1:
            raise PluginCheckError(
                f"{where}: the API published {len(self._publisher.sent)} "
                "messages for one event, not one"
            )
        [(key, value)] = self._publisher.sent
        message = decode(value)
        problems = _envelope_problems(message, key, event_type, body, data, token)
        if problems:
            raise PluginCheckError(
                f"{where}: the published message {message!r} is not the event sent: "
                + "; ".join(problems)
            )
        return message

    def row(self, event: str, data: Any, *, token: str | None = None) -> Row:
        """``data`` sent to the API and its published message mapped to a row, as the ETL would.

        Checks that the row's keys are its table's columns, in their order.
        """
        event_type = self._event_type(event)
        row = _map(event_type, self.publish(event, data, token=token))
        _check_columns(event_type, row, self.columns[event_type.table], data)
        return row

    def stored(self, event: str, data: Any, *, token: str | None = None) -> Row:
        """:meth:`row`, then inserted into a new copy of the table (chDB) and read back.

        Returns every column of the row as the table gives it back (the defaults of
        columns the row left out included); raises if a value did not survive.
        """
        event_type = self._event_type(event)
        row = self.row(event, data, token=token)
        with _warehouse() as client:
            columns = _create(client, event_type)
            return _store(client, event_type, row, columns)

    def assert_refused(
        self, event: str, data: Any, *fields: str, status: int = 422
    ) -> dict[str, list[str]]:
        """Check that the API refuses ``data`` (``422``), naming ``data.<field>`` for each field.

        Returns the answer's ``details``: the messages by field, as a client reads them.
        """
        where = _where(self._event_type(event))
        answered, body = self.post(event, data)
        if answered != status:
            raise PluginCheckError(
                f"{where}: POST /api/v1/events answered {answered}, not {status}, for data "
                f"{data!r}: {body}"
            )
        details = (body or {}).get("details", {})
        missing = [field for field in fields if f"data.{field}" not in details]
        if missing:
            named = ", ".join(f"data.{field}" for field in missing)
            raise PluginCheckError(
                f"{where}: the refusal of {data!r} does not name {named}; it names "
                f"{sorted(details)}"
            )
        return details

    def _event_type(self, event: str) -> EventType:
        if event not in self.registry:
            raise PluginCheckError(
                f"plugin {self.name} has no event type {event!r}; it has {self.registry.names}"
            )
        return self.registry[event]

    def _check_documented(self) -> None:
        answer = self._client.get("/openapi.json")
        if answer.status_code != 200:
            raise PluginCheckError(
                f"plugin {self.name}: GET /openapi.json answered {answer.status_code}: "
                "the OpenAPI document cannot be made of its schemas"
            )
        documented = {
            name
            for schema in answer.get_json()["components"]["schemas"].values()
            for name in schema.get("properties", {}).get("event", {}).get("enum", [])
        }
        missing = sorted(set(self.registry.names) - documented)
        if missing:
            raise PluginCheckError(
                f"plugin {self.name}: the OpenAPI document lacks the event type(s) {missing}"
            )


def _registry_alone(plugin: object, name: str) -> Registry:
    """The registry of ``plugin`` and no other, as start-up builds it."""
    try:
        registry = build_registry(make_plugin_manager([plugin], load_entry_points=False))
    except (RegistryError, pluggy.PluginValidationError) as error:
        raise PluginCheckError(f"clickstream would not start with plugin {name}: {error}") from None
    if not len(registry):
        raise PluginCheckError(
            f"plugin {name} adds no event type: give it a @hookimpl function "
            "register_event_types() returning a list of EventType (from core)"
        )
    return registry


def _check_with_installed(plugin: object, name: str) -> None:
    """Build the registry of the plugins installed here, with ``plugin`` among them."""
    try:
        manager = make_plugin_manager()
        if not manager.is_registered(plugin):
            manager = make_plugin_manager([plugin])
        build_registry(manager)
    except (RegistryError, pluggy.PluginValidationError) as error:
        raise PluginCheckError(
            f"with the plugins installed here, clickstream would not start with plugin "
            f"{name}: {error}"
        ) from None


def _where(event_type: EventType) -> str:
    return f"event type {event_type.name!r} of plugin {event_type.plugin}"


def _samples(event_type: EventType) -> list[dict[str, Any]]:
    """The example, and the example without its optional fields if that differs."""
    example = dict(event_type.example or {})
    optional = {
        field.data_key or attribute
        for attribute, field in event_type.schema().load_fields.items()
        if not field.required
    }
    minimal = {key: value for key, value in example.items() if key not in optional}
    return [example, minimal] if minimal != example else [example]


def _envelope_problems(
    message: dict[str, Any],
    key: str,
    event_type: EventType,
    answer: Any,
    data: Any,
    token: str | None,
) -> list[str]:
    """What differs between a published message and the event the API accepted."""
    problems = [f"it lacks {name}" for name in MESSAGE_KEYS if name not in message]
    if problems:
        return problems
    identity = _Identity().resolve(token)
    expected = {
        "event": event_type.name,
        "event_id": (answer or {}).get("event_id"),
        "user_id": identity.user_id,
        "identity": identity.mode,
        "schema_version": event_type.version,
        # The data travels as the client sent it (as JSON), not as the schema loaded it.
        "data": orjson.loads(orjson.dumps(data)),
    }
    problems = [
        f"{name} is {message.get(name)!r}, not {value!r}"
        for name, value in expected.items()
        if message.get(name) != value
    ]
    if key != event_type.name:
        problems.append(f"its Kafka key is {key!r}, not the event name")
    if "token" in message:
        problems.append("it carries the token")
    wrong = envelope_error(message)
    return [*problems, wrong] if wrong else problems


def _map(event_type: EventType, message: dict[str, Any]) -> Row:
    """What the ETL does with a message it maps itself (EventType.load_row): validate
    again, then map."""
    where = _where(event_type)
    try:
        return event_type.load_row(message)
    except ValidationError as error:
        raise PluginCheckError(
            f"{where}: the ETL's second validation refuses the published data "
            f"{message['data']!r}: {error.messages} (a schema must accept what it loaded "
            "once; the ETL would dead-letter it as schema_invalid)"
        ) from None
    except MapperError as error:
        raise PluginCheckError(
            f"{where}: {error}, for data {message['data']!r} (the ETL would dead-letter "
            "every such event as mapper_error; remember that an optional field absent from "
            "the event is None)"
        ) from error


@contextmanager
def _warehouse() -> Iterator[Client]:
    """A client of chDB in a fresh directory of its own, removed afterwards.

    A fresh directory since chDB lets one process at a time use one; the same process may
    open several one after the other, not two at once.
    """
    directory = tempfile.mkdtemp(prefix="clickstream-testing-")
    try:
        try:
            client = clickhouse_connect.get_client(dsn=f"chdb://{directory}")
        except Exception as error:
            raise RuntimeError(
                f"chDB cannot open {directory} (is a chDB warehouse open in this process "
                f"already?): {error}"
            ) from error
        try:
            client.command(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
            yield client
        finally:
            client.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _create(client: Client, event_type: EventType) -> list[Column]:
    """Make ``event_type``'s table from its DDL; its columns as ClickHouse made them."""
    table = event_type.table
    ddl = event_type.table_ddl().replace("{database}", DATABASE).replace("{table}", table)
    try:
        client.command(ddl)
    except Exception as error:
        raise PluginCheckError(
            f"{_where(event_type)}: ClickHouse refuses the DDL of table {table!r}:\n{ddl}\n{error}"
        ) from None
    return [
        Column(*found)
        for found in client.query(
            "SELECT name, type, default_kind FROM system.columns "
            "WHERE database = {db:String} AND table = {table:String} ORDER BY position",
            parameters={"db": DATABASE, "table": table},
        ).result_rows
    ]


def _check_columns(event_type: EventType, row: Row, columns: list[Column], data: Any) -> None:
    """The row's keys are the table's columns, in order; one with a DEFAULT may be left out."""
    where = f"{_where(event_type)}, table {event_type.table!r}"
    by_name = {column.name: column for column in columns}
    lacking = [c.name for c in columns if c.name not in row and c.default_kind != "DEFAULT"]
    if lacking:
        raise PluginCheckError(
            f"{where}: the row of data {data!r} lacks the column(s) {lacking}: to_row must "
            "give every column a value (None in a Nullable column), or ClickHouse stores "
            f"its type's default (0, '') there; an optional field needs load_default=None "
            f"so that the loaded data has it. Row keys: {list(row)}"
        )
    unknown = [key for key in row if key not in by_name]
    if unknown:
        raise PluginCheckError(
            f"{where}: the row has key(s) {unknown} that are no column of the table "
            f"(its columns: {[c.name for c in columns]}): rename them in to_row, or add "
            "the columns (fields of the schema, or table.sql)"
        )
    computed = [key for key in row if not by_name[key].insertable]
    if computed:
        raise PluginCheckError(
            f"{where}: the row gives values to {computed}, which ClickHouse computes "
            "(MATERIALIZED or ALIAS): leave them out of the row"
        )
    order = [c.name for c in columns if c.name in row]
    if list(row) != order:
        raise PluginCheckError(
            f"{where}: the row's keys are not in the table's column order:\n"
            f"  row:   {list(row)}\n  table: {order}"
        )


def _store(client: Client, event_type: EventType, row: Row, columns: list[Column]) -> Row:
    """Insert ``row``, read it back by its ``event_id`` and compare every value; the row read."""
    where = f"{_where(event_type)}, table {event_type.table!r}"
    table = f"{DATABASE}.{event_type.table}"
    types = {column.name: column.type for column in columns}
    names = list(row)
    try:
        client.insert(table, [[row[name] for name in names]], column_names=names)
    except Exception as error:
        raise PluginCheckError(
            f"{where}: ClickHouse cannot insert the row: {_culprit(client, table, row, types)}"
            f"{type(error).__name__}: {error}"
        ) from None
    stored = client.query(
        f"SELECT * FROM {table} WHERE event_id = {{event_id:UUID}}",
        parameters={"event_id": row["event_id"]},
    )
    if len(stored.result_rows) != 1:
        raise PluginCheckError(
            f"{where}: {len(stored.result_rows)} rows read back, not the one inserted"
        )
    back = dict(zip(stored.column_names, stored.result_rows[0], strict=True))
    wrong = [
        f"column {name} ({types[name]}): the row holds {row[name]!r} "
        f"({type(row[name]).__name__}), the table gives back {back[name]!r} "
        f"({type(back[name]).__name__})"
        for name in names
        if not _same(row[name], back[name], types[name])
    ]
    if wrong:
        raise PluginCheckError(
            f"{where}: values changed on the way into the table; to_row must give each "
            "column a value of its type, or ClickHouse converts it silently:\n  "
            + "\n  ".join(wrong)
        )
    return back


def _culprit(client: Client, table: str, row: Row, types: Mapping[str, str]) -> str:
    """The first column that refuses its value on its own (the others take their defaults)."""
    for name, value in row.items():
        try:
            client.insert(table, [[value]], column_names=[name])
        except Exception:
            return f"column {name} ({types[name]}) cannot hold {value!r} ({type(value).__name__}). "
    return ""


def _same(given: Any, back: Any, column_type: str) -> bool:
    """Whether ClickHouse gave back ``given`` (read as ``back``) from a column of that type."""
    given, back = _comparable(given, column_type), _comparable(back, column_type)
    if isinstance(given, bool) != isinstance(back, bool):
        return False
    if isinstance(given, float) or isinstance(back, float):
        return (
            isinstance(given, int | float)
            and isinstance(back, int | float)
            and math.isclose(given, back, rel_tol=1e-6)
        )
    return given == back


def _comparable(value: Any, column_type: str) -> Any:
    """``value`` as it compares with what ClickHouse gives back for a column of that type."""
    if isinstance(value, str) and "UUID" in column_type:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str) and "DateTime" in column_type:
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        precision = re.search(r"DateTime64\((\d)", column_type)
        digits = min(int(precision[1]), 6) if precision else 0
        step = 10 ** (6 - digits)
        return value.replace(microsecond=value.microsecond // step * step)
    if isinstance(value, list | tuple):
        return [_comparable(item, column_type) for item in value]
    return value
