"""A warehouse made before the specification's contract is migrated with its rows, not reset.

The tables of the built-in plugins as they were before version 2 (``movie_id``,
``query``, ``filters`` as a map, ...) are in ``pre_specification/``. With such a
warehouse the ETL refuses to load until each table is migrated; the shipped
``migrations/0002_specification.sql`` files rebuild each table with every old row
carried over and the old table kept; running them twice changes nothing.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from core.host.plugin_manager import build_registry, make_plugin_manager
from core.host.registry import Registry
from core.message import ENVELOPE_COLUMNS_DDL
from etl import ledger
from etl.runner import run_pass
from etl.warehouse import MigrationNeededError, Warehouse
from tests.etl_helpers import (
    BASE_TIME,
    BUILT_IN_TABLES,
    built_in_migration,
    create_topic,
    envelope,
    produce,
    query,
    with_tables,
)

pytestmark = pytest.mark.integration

OLD_DDL = Path(__file__).with_name("pre_specification")
MOVIE = uuid.UUID("3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b")
VIEW = uuid.UUID("7f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8")


def old_registry(registry: Registry) -> Registry:
    """The built-in plugins with their tables as they were before version 2."""

    def old_ddl(event_type) -> str:
        sql = (OLD_DDL / f"{BUILT_IN_TABLES[event_type.table]}.sql").read_text()
        return sql.replace("{envelope_columns}", ENVELOPE_COLUMNS_DDL)

    return with_tables(registry, old_ddl)


def envelope_row(event: str) -> dict:
    return {
        "event_id": uuid.uuid4(),
        "event": event,
        "timestamp": BASE_TIME,
        "user_id": "user-1",
        "identity": "verified",
        "schema_version": 1,
    }


OLD_ROWS = {
    "element_clicks": [
        {
            **envelope_row("element_click"),
            "element_type": "poster",
            "element_id": "card-3",
            "page_type": "main",
            "movie_id": MOVIE,
            "position": 2,
        }
    ],
    "page_views": [
        {
            **envelope_row("page_view_start"),
            "page_view_id": VIEW,
            "page_type": "movie",
            "movie_id": None,
            "url": "https://cinema.example/",
            "referrer": None,
            "visible_ms": None,
        }
    ],
    "quality_changes": [
        {
            **envelope_row("quality_change"),
            "movie_id": MOVIE,
            "old_quality": 1080,
            "new_quality": 720,
            "reason": "auto",
            "position_s": 12,
        }
    ],
    "video_completes": [
        {
            **envelope_row("video_complete"),
            "movie_id": MOVIE,
            "duration_total": True,
            "watched_s": 60,
            "duration_s": 61,
        }
    ],
    "search_filters": [
        {
            **envelope_row("search_filter"),
            "query": "комедии",
            "filters": {"genre": "комедия", "year": "2020"},
            "results_count": 4,
        }
    ],
}


def migration(table: str) -> str:
    return built_in_migration(table, "0002_specification.sql")


@pytest.fixture
def old_warehouse(settings, kafka_bootstrap):
    settings = settings.replace(etl_poll_timeout_s=0.2)
    create_topic(settings)
    registry = build_registry(make_plugin_manager())
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        warehouse.ensure_schema(client, old_registry(registry), ledger.TABLES)
        for table, rows in OLD_ROWS.items():
            client.insert(
                warehouse.table(table), [list(r.values()) for r in rows], column_names=list(rows[0])
            )
    return settings, registry, warehouse


def test_the_etl_refuses_to_load_a_pre_specification_warehouse(old_warehouse) -> None:
    settings, registry, _ = old_warehouse
    produce(
        settings, [envelope("element_click", {"element_type": "trailer", "page_type": "movie"})]
    )
    with pytest.raises(MigrationNeededError) as refused:
        run_pass(settings, registry)
    assert all(table in str(refused.value) for table in BUILT_IN_TABLES)
    assert query(settings, "SELECT count() FROM {db}.element_clicks") == [(1,)]


def test_the_migrations_carry_every_old_row_into_the_new_columns(old_warehouse) -> None:
    settings, registry, warehouse = old_warehouse
    with warehouse.session() as client:
        outcomes = [warehouse.migrate(client, registry, t, migration(t)) for t in BUILT_IN_TABLES]
    for table, outcome in zip(BUILT_IN_TABLES, outcomes, strict=True):
        assert outcome.startswith(
            f"migrated {table}; its previous rows are kept in {table}__before_"
        )

    assert query(
        settings,
        "SELECT element_type, page_type, element_id, video_id, position FROM {db}.element_clicks",
    ) == [("poster", "main", "card-3", str(MOVIE), 2)]
    assert query(settings, "SELECT page_view_id, video_id, url FROM {db}.page_views") == [
        (VIEW, None, "https://cinema.example/")
    ]
    assert query(
        settings, "SELECT video_id, old_quality, new_quality, reason FROM {db}.quality_changes"
    ) == [(str(MOVIE), 1080, 720, "auto")]
    assert query(settings, "SELECT video_id, duration_total FROM {db}.video_completes") == [
        (str(MOVIE), True)
    ]
    assert query(
        settings, "SELECT search_query, filters, results_count FROM {db}.search_filters"
    ) == [("комедии", "genre=комедия&year=2020", 4)]
    kept = query(
        settings,
        "SELECT name, total_rows FROM system.tables WHERE database = %(db)s "
        "AND name LIKE '%%\\_\\_before\\_%%' ORDER BY name",
        db=settings.warehouse.database,
    )
    assert [(name.split("__before_")[0], rows) for name, rows in kept] == [
        (table, 1) for table in sorted(BUILT_IN_TABLES)
    ]


def test_after_the_migrations_the_etl_loads_the_specifications_events(old_warehouse) -> None:
    settings, registry, warehouse = old_warehouse
    with warehouse.session() as client:
        for table in BUILT_IN_TABLES:
            warehouse.migrate(client, registry, table, migration(table))
        again = [warehouse.migrate(client, registry, t, migration(t)) for t in BUILT_IN_TABLES]
    assert again == [f"{table} already has its current definition" for table in BUILT_IN_TABLES]

    produce(
        settings,
        [
            envelope("search_filter", {"search_query": "Брат 2", "filters": "genre=драма"}),
            envelope("video_complete", {"video_id": "tt0111161", "duration_total": True}),
        ],
    )
    assert run_pass(settings, registry).rows == {"search_filters": 1, "video_completes": 1}
    assert query(
        settings,
        "SELECT search_query, filters FROM {db}.search_filters_dedup ORDER BY search_query",
    ) == [("Брат 2", "genre=драма"), ("комедии", "genre=комедия&year=2020")]
    assert query(settings, "SELECT count() FROM {db}.page_view_durations") == [(1,)]
