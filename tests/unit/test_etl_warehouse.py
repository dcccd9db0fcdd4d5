"""The warehouse (``etl.warehouse``) on the real ClickHouse engine (chDB, in-process): DDL
versions, and plugins' views made when their tables exist, made again when their query or a
setting changes, never in the way."""

from __future__ import annotations

from core import View
from etl.warehouse import Warehouse, ddl_sha256, render
from tests.etl_helpers import LONG_NOTES, ensure_notes, notes_registry, query

BROKEN = View("broken_view", "SELECT no_such_column FROM {database}.notes", ("notes",))


def test_a_view_is_made_with_its_settings_and_remade_when_one_changes(settings) -> None:
    registry = notes_registry(LONG_NOTES)
    ensure_notes(settings, registry)
    assert query(settings, "SELECT text FROM {db}.long_notes ORDER BY text") == [
        ("abcd",),
        ("abcdefgh",),
    ]
    ensure_notes(settings.replace(plugin_values={"note_limit": "5"}), registry)
    assert query(settings, "SELECT text FROM {db}.long_notes") == [("abcdefgh",)]


def test_an_unchanged_view_is_not_made_again(settings, monkeypatch) -> None:
    registry = notes_registry(LONG_NOTES)
    ensure_notes(settings, registry)
    made = []
    monkeypatch.setattr(Warehouse, "_make_view", lambda self, client, view, reg: made.append(view))
    ensure_notes(settings, registry)
    assert made == []


def test_a_broken_view_is_logged_and_the_rest_goes_on(settings, caplog) -> None:
    registry = notes_registry(BROKEN, LONG_NOTES)
    ensure_notes(settings, registry)
    assert "warehouse.view_failed view=broken_view" in caplog.text
    assert query(settings, "SELECT count() FROM {db}.long_notes") == [(2,)]


def test_a_ddl_version_ignores_the_database_it_is_applied_to():
    ddl = "CREATE TABLE IF NOT EXISTS {database}.{table} (a UInt8) ENGINE = MergeTree ORDER BY a"

    assert ddl_sha256(ddl, "t") == ddl_sha256(ddl + "\n", "t")
    assert ddl_sha256(ddl, "t") != ddl_sha256(ddl.replace("UInt8", "UInt16"), "t")
    assert render(ddl, "db", "t").startswith("CREATE TABLE IF NOT EXISTS db.t (")
