"""The warehouse's DDL versions (``etl.warehouse``) on the real Kafka broker: a table's DDL
that only adds a column is applied, one that changes a column stops passes until its
migration is applied."""

from __future__ import annotations

import dataclasses

import pytest

from core import EventType, hookimpl
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.host.registry import Registry
from etl.runner import run_pass
from etl.warehouse import MigrationNeededError, Warehouse
from tests.etl_helpers import produce, query, rating

pytestmark = pytest.mark.integration


def _with_ddl(event_type: EventType, ddl: str) -> Registry:
    """The etl_registry of a plugin whose table definition changed to ``ddl``."""

    class ChangedPlugin:
        @hookimpl
        def register_event_types(self) -> list[EventType]:
            return [dataclasses.replace(event_type, ddl=ddl, plugin="")]

    return build_registry(make_plugin_manager(extra_plugins=[ChangedPlugin()]))


def test_a_ddl_that_only_adds_a_column_is_applied_without_stopping(etl_settings, etl_registry):
    produce(etl_settings, [rating()])
    run_pass(etl_settings, etl_registry)
    rating_type = etl_registry["test_rating"]
    added = rating_type.ddl.replace("comment String)", "comment String, lang String DEFAULT 'ru')")
    produce(etl_settings, [rating()])

    assert run_pass(etl_settings, _with_ddl(rating_type, added)).rows == {"test_ratings": 1}
    assert query(etl_settings, "SELECT count(), groupUniqArray(lang) FROM {db}.test_ratings") == [
        (2, ["ru"])
    ]
    columns = query(
        etl_settings,
        "SELECT name FROM system.columns WHERE database = %(db)s AND table = 'test_ratings' "
        "ORDER BY position",
        db=etl_settings.warehouse.database,
    )
    assert [name for (name,) in columns][-2:] == ["comment", "lang"]
    assert run_pass(etl_settings, _with_ddl(rating_type, added)).messages == 0


def test_a_changed_ddl_stops_passes_until_its_migration_is_applied(etl_settings, etl_registry):
    produce(etl_settings, [rating()])
    run_pass(etl_settings, etl_registry)
    rating_type = etl_registry["test_rating"]
    changed_registry = _with_ddl(
        rating_type, rating_type.ddl.replace("stars UInt8", "stars UInt16")
    )
    produce(etl_settings, [rating()])

    with pytest.raises(MigrationNeededError, match="test_ratings"):
        run_pass(etl_settings, changed_registry)
    warehouse = Warehouse.from_settings(etl_settings)
    with warehouse.session() as client:
        warehouse.migrate(
            client,
            changed_registry,
            "test_ratings",
            "ALTER TABLE {database}.{table} MODIFY COLUMN stars UInt16",
        )

    assert run_pass(etl_settings, changed_registry).rows == {"test_ratings": 1}
    assert query(etl_settings, "SELECT count(), toTypeName(any(stars)) FROM {db}.test_ratings") == [
        (2, "UInt16")
    ]
