"""The built-in tables' sort keys and column types, on the real engine (chDB).

Analysts ask for a time range, a user, or both (and pair page views by id and user), so
every built-in table sorts by day, then user, and ends with ``event_id``, which keeps one
sorting key per event for ReplacingMergeTree. Text a client chooses freely is not
``LowCardinality``: only bounded choices (and the envelope's ``event`` and ``identity``)
are. The granule counts come from ClickHouse's own ``EXPLAIN indexes = 1``.
"""

from __future__ import annotations

import re

import pytest

from core import Choice, Text
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.host.registry import Registry
from etl import ledger
from etl.warehouse import Warehouse, render

TABLES = ("element_clicks", "page_views", "quality_changes", "search_filters", "video_completes")
#: Envelope columns whose values the server chooses from a fixed set (``event``,
#: ``identity``) or from the families ua-parser knows (a few hundred at most).
BOUNDED_ENVELOPE = {"event", "identity", "device", "browser", "os"}
#: Ten days of rows in small granules, so that pruning shows in granule counts.
ROWS, DAYS, USERS, GRANULE = 100_000, 10, 1000, 1024
START = "toDateTime64('2026-11-01 00:00:00', 3, 'UTC')"
GRANULES = re.compile(r"Granules: (\d+)/(\d+)")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return build_registry(make_plugin_manager())


def sorting_keys(settings, registry: Registry) -> tuple[dict[str, str], dict[str, dict]]:
    """Each built-in table's sorting key and column types, as ClickHouse made them."""
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        warehouse.ensure_schema(client, registry, ledger.TABLES)
        keys = dict(
            client.query(
                "SELECT name, sorting_key FROM system.tables "
                "WHERE database = {db:String} AND name IN {names:Array(String)}",
                parameters={"db": warehouse.database, "names": list(TABLES)},
            ).result_rows
        )
        types: dict[str, dict] = {}
        for table, column, kind in client.query(
            "SELECT table, name, type FROM system.columns "
            "WHERE database = {db:String} AND table IN {names:Array(String)}",
            parameters={"db": warehouse.database, "names": list(TABLES)},
        ).result_rows:
            types.setdefault(table, {})[column] = kind
    return keys, types


def test_every_built_in_table_sorts_by_day_then_user_and_ends_with_event_id(
    settings, registry: Registry
) -> None:
    keys, _ = sorting_keys(settings, registry)
    assert keys == {
        "element_clicks": "toDate(timestamp), user_id, event_id",
        "page_views": "toDate(timestamp), user_id, page_view_id, event, event_id",
        "quality_changes": "toDate(timestamp), user_id, video_id, event_id",
        "search_filters": "toDate(timestamp), user_id, event_id",
        "video_completes": "toDate(timestamp), user_id, video_id, event_id",
    }


def test_only_bounded_columns_are_low_cardinality(settings, registry: Registry) -> None:
    _, types = sorting_keys(settings, registry)
    for table in registry.tables():
        fields = {}
        for member in registry:
            if member.table == table:
                fields.update(member.schema().fields)
        for column, kind in types[table].items():
            field = fields.get(column)
            if isinstance(field, Text):
                assert "LowCardinality" not in kind, f"{table}.{column} is free text: {kind}"
            if "LowCardinality" in kind:
                assert column in BOUNDED_ENVELOPE or isinstance(field, Choice), (table, column)


def granules(client, sql: str) -> tuple[int, int]:
    """(granules read, granules in the table) of ``sql``'s primary-key stage."""
    plan = "\n".join(row[0] for row in client.query(f"EXPLAIN indexes = 1 {sql}").result_rows)
    *_, (read, total) = GRANULES.findall(plan)
    return int(read), int(total)


def fill(client, warehouse: Warehouse, registry: Registry, table: str) -> str:
    """``table`` with ``ROWS`` rows over ``DAYS`` days from ``USERS`` users, small granules."""
    name = f"{table}__granules"
    ddl = registry.tables()[table].ddl
    client.command(
        render(ddl, warehouse.database, name) + f" SETTINGS index_granularity = {GRANULE}"
    )
    events = [member.name for member in registry if member.table == table]
    values = {
        "event_id": "generateUUIDv4(number)",
        "event": f"arrayElement({events}, number % {len(events)} + 1)",
        "timestamp": f"{START} + number * {DAYS * 86400 / ROWS}",
        "user_id": f"concat('user-', toString(cityHash64(number) % {USERS}))",
        "identity": "'verified'",
    }
    columns = client.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}",
        parameters={"db": warehouse.database, "t": name},
    ).result_rows
    for column, kind in columns:
        if column in values or kind.startswith(("Nullable", "LowCardinality(Nullable")):
            continue
        if kind == "UUID":
            values[column] = "generateUUIDv4(number + 1)"
        elif "String" in kind:
            values[column] = "concat('v', toString(cityHash64(number, 1) % 500))"
        elif kind == "Bool":
            values[column] = "number % 2 = 0"
        else:
            values[column] = "number % 100"
    client.command(
        f"INSERT INTO {warehouse.table(name)} ({', '.join(values)}) "
        f"SELECT {', '.join(values.values())} FROM numbers({ROWS})"
    )
    return warehouse.table(name)


@pytest.mark.parametrize("table", TABLES)
def test_a_day_or_a_user_reads_a_fraction_of_the_table(
    settings, registry: Registry, table: str
) -> None:
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        client.command(f"CREATE DATABASE IF NOT EXISTS {warehouse.database}")
        name = fill(client, warehouse, registry, table)
        user = granules(client, f"SELECT count() FROM {name} WHERE user_id = 'user-7'")
        day = granules(
            client,
            f"SELECT count() FROM {name} WHERE timestamp >= '2026-11-04 00:00:00' "
            "AND timestamp < '2026-11-05 00:00:00'",
        )
        both = granules(
            client,
            f"SELECT count() FROM {name} WHERE user_id = 'user-7' "
            "AND timestamp >= '2026-11-04 00:00:00' AND timestamp < '2026-11-05 00:00:00'",
        )
    total = user[1]
    assert total >= ROWS // GRANULE
    assert user[0] <= total / 3, f"a user reads {user[0]} of {total} granules"
    # The bound `timestamp < midnight` prunes by toDate(timestamp) <= that day: two days read.
    assert day[0] <= 3 * total / DAYS, f"one day of {DAYS} reads {day[0]} of {total} granules"
    assert both[0] <= 3, f"a user's day reads {both[0]} of {total} granules"
