"""A warehouse of version 2's sort keys is rebuilt with the new ones, its rows kept, on the
real Kafka broker and the real ClickHouse engine (chDB).

The tables as version 2 generated them are in ``version_2_tables/``. Events are loaded
into them by the ETL, one of them delivered twice; the ETL then refuses to load until the
shipped ``migrations/0003_sort_key.sql`` files rebuild each table. After them every row is
there, each table has the shape a fresh warehouse gets, and an event delivered once more
still collapses into one.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from core.host.plugin_manager import build_registry, make_plugin_manager
from core.host.registry import Registry
from core.message import ENVELOPE_COLUMNS_DDL
from etl.runner import run_pass
from etl.warehouse import MigrationNeededError, Warehouse, render
from tests.etl_helpers import (
    BUILT_IN_TABLES,
    at,
    built_in_migration,
    create_topic,
    envelope,
    produce,
    query,
    with_tables,
)

pytestmark = pytest.mark.integration

VERSION_2 = Path(__file__).with_name("version_2_tables")


#: The envelope's columns after ``schema_version``: the visitor's.
VISITOR_COLUMNS_DDL = ENVELOPE_COLUMNS_DDL.split(
    "'version of the event type the data was validated by',\n    ", 1
)[1]


def version_2_ddl(table: str) -> str:
    """``table`` as version 2 generated it, with the envelope's visitor columns (issue 14),
    which every event table has, and which the sort keys' migration copies like the rest."""
    made = (VERSION_2 / f"{BUILT_IN_TABLES[table]}.sql").read_text()
    schema_version = re.search(r"^    schema_version .*,$", made, re.M).group(0)
    return made.replace(schema_version, schema_version + "\n    " + VISITOR_COLUMNS_DDL + ",")


def version_2(registry: Registry) -> Registry:
    """The built-in event types with their tables as version 2 generated them."""
    return with_tables(registry, lambda event_type: version_2_ddl(event_type.table))


def migration(table: str) -> str:
    return built_in_migration(table, "0003_sort_key.sql")


def shapes(settings, *tables: str) -> dict[str, tuple]:
    """Sorting key and (column, type) list of each of ``tables``."""
    database = settings.warehouse.database
    keys = dict(
        query(
            settings,
            "SELECT name, sorting_key FROM system.tables WHERE database = %(db)s",
            db=database,
        )
    )
    columns = query(
        settings,
        "SELECT table, name, type FROM system.columns WHERE database = %(db)s "
        "ORDER BY table, position",
        db=database,
    )
    return {
        table: (keys[table], [(name, kind) for owner, name, kind in columns if owner == table])
        for table in tables
    }


def everything(settings, table: str) -> list[tuple]:
    """One row per event of ``table``, in one order."""
    return sorted(query(settings, f"SELECT * FROM {{db}}.{table} FINAL"), key=repr)


@pytest.fixture
def loaded(settings, kafka_bootstrap):
    """A version 2 warehouse holding events of every type; one page view start came twice."""
    settings = settings.replace(etl_poll_timeout_s=0.2)
    create_topic(settings)
    registry = build_registry(make_plugin_manager())
    old = version_2(registry)
    messages = []
    for round_ in range(3):  # by one user each, a page view among them; each a second earlier
        view = {"page_view_id": str(uuid.UUID(int=round_ + 1))}
        for t in registry:
            data = {**t.example, **(view if t.table == "page_views" else {})}
            moment = at(-len(messages))
            messages.append(envelope(t.name, data, user_id=f"user-{round_}", at=moment))
    twice = messages[registry.names.index("page_view_start")]
    produce(settings, messages)
    run_pass(settings, old)
    # A copy of one event in another part, as the ETL of version 2 stored a record
    # published twice (today's ETL leaves such a copy out): the migration must keep it.
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        client.command(
            f"INSERT INTO {warehouse.table('page_views')} "
            f"SELECT * FROM {warehouse.table('page_views')} WHERE event_id = {{id:UUID}}",
            parameters={"id": twice["event_id"]},
        )
    return settings, registry, twice


def test_the_etl_refuses_the_old_sort_keys_and_the_migrations_keep_every_row(loaded) -> None:
    settings, registry, _ = loaded
    before = {table: everything(settings, table) for table in BUILT_IN_TABLES}
    assert sum(len(rows) for rows in before.values()) == 3 * len(registry.names)
    assert query(settings, "SELECT count() FROM {db}.page_views") == [(6 + 1,)]

    with pytest.raises(MigrationNeededError) as refused:
        run_pass(settings, registry)
    assert all(table in str(refused.value) for table in BUILT_IN_TABLES)

    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        outcomes = {
            t: warehouse.migrate(client, registry, t, migration(t)) for t in BUILT_IN_TABLES
        }
        for table, event_type in registry.tables().items():
            client.command(render(event_type.ddl, warehouse.database, f"{table}__fresh"))
    kept = {}
    for table, outcome in outcomes.items():
        assert outcome.startswith(
            f"migrated {table}; its previous rows are kept in {table}__before_"
        )
        kept[table] = outcome.rsplit(" ", 1)[-1]
        assert everything(settings, table) == before[table]
        assert everything(settings, kept[table]) == before[table]
    # Copied in one insert, the duplicate not merged yet collapsed on the way.
    assert query(settings, "SELECT count() FROM {db}.page_views") == [(6,)]
    after = shapes(settings, *BUILT_IN_TABLES, *(f"{table}__fresh" for table in BUILT_IN_TABLES))
    for table in BUILT_IN_TABLES:
        assert after[table] == after[f"{table}__fresh"], table
        assert after[table][0].startswith("toDate(timestamp), user_id, ")
    assert shapes(settings, kept["page_views"])[kept["page_views"]][0] == (
        "page_view_id, event, event_id"
    )


def test_after_the_migrations_an_event_delivered_again_is_left_out(loaded) -> None:
    settings, registry, twice = loaded
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        for table in BUILT_IN_TABLES:
            warehouse.migrate(client, registry, table, migration(table))
        again = [warehouse.migrate(client, registry, t, migration(t)) for t in BUILT_IN_TABLES]
    assert again == [f"{table} already has its current definition" for table in BUILT_IN_TABLES]

    produce(settings, [twice])  # once more: the rebuilt table holds it, the ETL leaves it out
    assert run_pass(settings, registry).rows == {"page_views": 1}
    distinct = "SELECT count() FROM {db}.page_views_dedup"
    # The rebuild's one block collapsed the old copy; the ETL stored no new one.
    assert query(settings, "SELECT count() FROM {db}.page_views") == [(6,)]
    assert query(settings, distinct) == [(6,)]
    with warehouse.session() as client:
        client.command(f"OPTIMIZE TABLE {warehouse.table('page_views')} FINAL")
    assert query(settings, "SELECT count() FROM {db}.page_views") == [(6,)]
    assert query(
        settings,
        "SELECT status, count() FROM {db}.page_view_durations GROUP BY status ORDER BY status",
    ) == [("closed", 3)]
