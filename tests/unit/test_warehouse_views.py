"""Plugins' views and reports on the real ClickHouse engine (chDB, in-process): made when
their tables exist, made again when their query or a setting changes, never in the way."""

from __future__ import annotations

import pytest

from core import EventType, PluginSetting, Report, View, hookimpl
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.message import ENVELOPE_COLUMNS_DDL
from etl.reports import format_report, plugin_report, quality_report
from etl.warehouse import Warehouse
from tests.etl_helpers import query
from tests.unit.test_registry import NoteSchema

DDL = (
    f"CREATE TABLE IF NOT EXISTS {{database}}.{{table}} ({ENVELOPE_COLUMNS_DDL}, text String) "
    "ENGINE = ReplacingMergeTree ORDER BY event_id"
)
LIMIT = PluginSetting("note_limit", 3, "Notes longer than this are long.")
LONG_NOTES = View(
    "long_notes",
    "-- notes over the limit\nSELECT text FROM {database}.notes WHERE length(text) > {note_limit}",
    ("notes",),
)
BROKEN = View("broken_view", "SELECT no_such_column FROM {database}.notes", ("notes",))
REPORT = Report(
    "notes",
    "Long notes.",
    "SELECT text, length(text) AS length FROM {database}.long_notes ORDER BY text",
    "SELECT count() AS long FROM {database}.long_notes",
    needs=("long_notes",),
)


class NotesPlugin:
    def __init__(self, *views: View) -> None:
        self.views = list(views)

    @hookimpl
    def register_event_types(self):
        example = {"text": "hi"}
        return [EventType("note_added", NoteSchema, "notes", DDL, example)]

    @hookimpl
    def register_settings(self):
        return [LIMIT]

    @hookimpl
    def register_views(self):
        return self.views

    @hookimpl
    def register_reports(self):
        return [REPORT]


def registry_with(*views: View):
    return build_registry(make_plugin_manager([NotesPlugin(*views)], load_entry_points=False))


def ensure(settings, registry) -> None:
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        warehouse.ensure_schema(client, registry)
        client.command(
            f"INSERT INTO {warehouse.table('notes')} (event_id, event, timestamp, user_id, "
            "identity, text) SELECT generateUUIDv4(text), 'note_added', now(), 'u', 'anonymous', "
            "text FROM (SELECT arrayJoin(['ab', 'abcd', 'abcdefgh']) AS text) "
            f"WHERE (SELECT count() FROM {warehouse.table('notes')}) = 0"
        )


def test_a_view_is_made_with_its_settings_and_remade_when_one_changes(settings) -> None:
    registry = registry_with(LONG_NOTES)
    ensure(settings, registry)
    assert query(settings, "SELECT text FROM {db}.long_notes ORDER BY text") == [
        ("abcd",),
        ("abcdefgh",),
    ]
    ensure(settings.replace(plugin_values={"note_limit": "5"}), registry)
    assert query(settings, "SELECT text FROM {db}.long_notes") == [("abcdefgh",)]


def test_an_unchanged_view_is_not_made_again(settings, monkeypatch) -> None:
    registry = registry_with(LONG_NOTES)
    ensure(settings, registry)
    made = []
    monkeypatch.setattr(Warehouse, "_make_view", lambda self, client, view, reg: made.append(view))
    ensure(settings, registry)
    assert made == []


def test_a_broken_view_is_logged_and_the_rest_goes_on(settings, caplog) -> None:
    registry = registry_with(BROKEN, LONG_NOTES)
    ensure(settings, registry)
    assert "warehouse.view_failed view=broken_view" in caplog.text
    assert query(settings, "SELECT count() FROM {db}.long_notes") == [(2,)]


def test_a_plugin_report_prints_its_rows_and_figures(settings) -> None:
    registry = registry_with(LONG_NOTES)
    before = plugin_report(settings, registry, "notes")
    assert not before.available
    assert format_report(before) == "notes: nothing to report yet (long_notes missing)"
    ensure(settings, registry)
    report = plugin_report(settings, registry, "notes")
    assert (report.columns, report.rows, report.figures) == (
        ["text", "length"],
        [("abcd", 4), ("abcdefgh", 8)],
        {"long": 2},
    )
    assert format_report(report).splitlines() == [
        "text      length",
        "abcd           4",
        "abcdefgh       8",
        "long: 2",
    ]
    assert quality_report(settings, registry, with_lag=False).figures == {"notes": {"long": 2}}


@pytest.mark.parametrize("name", ["counts", "quality", "notes"])
def test_the_cli_offers_built_in_and_plugin_reports(monkeypatch, name) -> None:
    import etl.cli

    monkeypatch.setattr(etl.cli, "_registry", lambda: registry_with(LONG_NOTES))
    assert etl.cli.parser().parse_args(["report", name]).which == name
