"""The registry (``core.host.registry``) refuses broken or conflicting plugins."""

from __future__ import annotations

import inspect
import itertools
import re
from pathlib import Path

import pytest
from marshmallow import Schema, fields

from core import EventType, PluginSetting, Report, TrackerScript, View, hookimpl, table_ddl
from core.config import ConfigError, Settings
from core.host import hookspecs
from core.host.fields import Text
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.host.registry import EVENT_NAME, Registry, RegistryError
from core.message import ENVELOPE_COLUMNS_DDL
from tests.etl_helpers import envelope
from tests.fakes import NoteSchema

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_NUMBERS = itertools.count(1)
DDL = f"CREATE TABLE IF NOT EXISTS {{database}}.{{table}} ({ENVELOPE_COLUMNS_DDL}) ENGINE = Memory"


def note_type(name: str = "note_added", table: str = "notes", **changes) -> EventType:
    fields = {"schema": NoteSchema, "table": table, "ddl": DDL, "example": {"text": "hi"}}
    return EventType(name=name, **{**fields, **changes})


def plugin(*event_types: EventType) -> object:
    class Plugin:
        __qualname__ = f"Plugin{next(PLUGIN_NUMBERS)}"

        @hookimpl
        def register_event_types(self):
            return list(event_types)

    return Plugin()


def registry_of(*plugins: object):
    return build_registry(make_plugin_manager(plugins, load_entry_points=False))


def test_collects_event_types_of_every_plugin() -> None:
    registry = registry_of(plugin(note_type()), plugin(note_type("note_removed", "removals")))
    assert registry.names == ["note_added", "note_removed"]
    assert registry["note_added"].table == "notes"


def test_two_plugins_claiming_one_event_name_stop_start_up_naming_both() -> None:
    first, second = plugin(note_type()), plugin(note_type(table="other_notes"))
    with pytest.raises(RegistryError) as error:
        registry_of(first, second)
    message = str(error.value)
    assert "note_added" in message
    assert type(first).__qualname__ in message
    assert type(second).__qualname__ in message


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"name": "Bad Name"}, "name must match"),
        ({"table": "bad-table"}, "table must match"),
        ({"ddl": "CREATE TABLE t (x UInt8)"}, "ddl must be"),
        ({"schema": dict}, "marshmallow Schema"),
        ({"example": {"text": ""}}, "example is invalid"),
        ({"to_row": "not callable"}, "to_row must be callable"),
        ({"example": None}, "example is required"),
        ({"order_by": ("text",)}, "order_by is the sort key of a generated table"),
        ({"ddl": None, "order_by": ("txt",)}, "order_by names 'txt', which is not a column"),
    ],
)
def test_an_invalid_event_type_stops_start_up(changes, complaint) -> None:
    with pytest.raises(RegistryError, match=complaint):
        registry_of(plugin(note_type(**changes)))


@pytest.mark.parametrize(
    "name",
    [
        # The specification's names, which are not past tense: no tense or form is imposed.
        "element_click",
        "page_view_start",
        "page_view_end",
        "quality_change",
        "video_complete",
        "search_filter",
        "rating_submitted",
        "v",
        "trailer_2_played",
        "x" * 64,
    ],
)
def test_an_event_name_is_a_letter_then_letters_digits_underscores_up_to_64(name: str) -> None:
    assert registry_of(plugin(note_type(name))).names == [name]


@pytest.mark.parametrize(
    "name",
    ["", "Rating", "rating-submitted", "rating submitted", "2nd_view", "_hidden", "оценка"]
    + ["x" * 65, "rating\n"],
)
def test_any_other_event_name_stops_start_up(name: str) -> None:
    with pytest.raises(RegistryError, match="the name must match"):
        registry_of(plugin(note_type(name)))


def test_the_name_rule_the_guide_states_is_the_one_enforced() -> None:
    assert EVENT_NAME.pattern == r"^[a-z][a-z0-9_]{0,63}$"
    documented = " ".join(inspect.getdoc(hookspecs.register_event_types).split())
    assert (
        "a lower-case letter, then lower-case letters, digits and underscores, "
        "64 characters at most" in documented
    )
    assert "unique across all plugins" in documented
    # No tense is enforced (the specification's own names are nouns), so none is advised.
    guide = " ".join((ROOT / "docs" / "writing-plugins.md").read_text(encoding="utf-8").split())
    for text in (documented, guide):
        assert not re.search(r"past[- ]tense", text, re.IGNORECASE)


def test_a_table_of_a_field_with_no_known_column_stops_start_up_naming_it() -> None:
    class Tagged(Schema):
        text = Text(required=True)
        tags = fields.List(fields.String(), load_default=None)

    with pytest.raises(RegistryError) as raised:
        registry_of(plugin(note_type(schema=Tagged, ddl=None)))
    assert re.search(
        r"event type 'note_added' of plugin .*Plugin\d+: its table cannot be generated: "
        r"field 'tags' of Tagged: its kind, marshmallow.fields.List, names no ClickHouse column",
        str(raised.value),
    )
    assert "table.sql" in str(raised.value)
    # The same schema with a table of its own is fine: the field kinds matter only to generation.
    assert "note_added" in registry_of(plugin(note_type(schema=Tagged)))


def test_without_ddl_the_registry_holds_the_generated_table() -> None:
    registry = registry_of(plugin(note_type(ddl=None), note_type("note_edited", ddl=None)))
    ddl = registry["note_added"].ddl
    assert ddl == table_ddl(NoteSchema) == registry["note_edited"].ddl
    assert "\n    text String\n)\n" in ddl
    # What the registry holds passes the checks again, unchanged.
    assert registry_of(plugin(*registry))["note_added"] == registry["note_added"]


def test_a_plugin_contributes_all_or_nothing() -> None:
    broken = plugin(note_type("note_ok", "ok_notes"), note_type("note_bad", example={}))
    with pytest.raises(RegistryError, match="note_bad"):
        registry_of(broken)


def test_two_plugins_cannot_share_a_table() -> None:
    with pytest.raises(RegistryError, match="table 'notes'"):
        registry_of(plugin(note_type()), plugin(note_type("note_edited")))


def test_one_plugins_event_types_may_share_a_table_with_one_ddl() -> None:
    registry = registry_of(plugin(note_type(), note_type("note_edited")))
    assert set(registry.tables()) == {"notes"}


@pytest.mark.parametrize("version", [0, 65536, "2", True, 1.5])
def test_an_event_type_version_is_a_small_positive_integer(version: object) -> None:
    with pytest.raises(RegistryError, match="version must be an integer"):
        Registry([("test", [note_type(version=version)])])


# Settings, views and reports: the hooks beside register_event_types


def contributing(
    *, settings=(), views=(), reports=(), event_types=(), tracker_scripts=()
) -> object:
    class Plugin:
        __qualname__ = f"Plugin{next(PLUGIN_NUMBERS)}"

        @hookimpl
        def register_event_types(self):
            return list(event_types)

        @hookimpl
        def register_settings(self):
            return list(settings)

        @hookimpl
        def register_views(self):
            return list(views)

        @hookimpl
        def register_reports(self):
            return list(reports)

        @hookimpl
        def register_tracker_scripts(self):
            return list(tracker_scripts)

    return Plugin()


NOTES_VIEW = View("note_lengths", "SELECT length(text) AS n FROM {database}.notes", ("notes",))
NOTES_REPORT = Report("notes", "Notes by length.", "SELECT 1 AS one", "SELECT 2 AS two")
LIMIT = PluginSetting("note_limit", 10, "Longest note.")


def test_settings_views_and_reports_are_collected_with_their_plugin() -> None:
    owner = contributing(
        event_types=[note_type()], settings=[LIMIT], views=[NOTES_VIEW], reports=[NOTES_REPORT]
    )
    registry = registry_of(owner)
    assert list(registry.settings) == ["note_limit"]
    assert list(registry.views) == ["note_lengths"]
    assert list(registry.reports) == ["notes"]
    assert registry.views["note_lengths"].plugin == registry["note_added"].plugin != ""
    assert registry.settings["note_limit"].plugin == registry["note_added"].plugin


@pytest.mark.parametrize(
    ("kind", "first", "second"),
    [
        ("settings", LIMIT, PluginSetting("note_limit", 20, "Another.")),
        ("reports", NOTES_REPORT, Report("notes", "Again.", "SELECT 3")),
        ("tracker_scripts", TrackerScript("notes", "a();"), TrackerScript("notes", "b();")),
    ],
)
def test_two_plugins_claiming_one_name_stop_start_up_naming_both(kind, first, second) -> None:
    one, two = contributing(**{kind: [first]}), contributing(**{kind: [second]})
    with pytest.raises(RegistryError, match="claimed by two plugins") as refused:
        registry_of(one, two)
    assert type(one).__qualname__ in str(refused.value)
    assert type(two).__qualname__ in str(refused.value)


@pytest.mark.parametrize(
    ("contribution", "complaint"),
    [
        ({"views": [View("lengths", "DROP TABLE x", ("notes",))]}, "must be a SELECT"),
        ({"views": [View("lengths", "SELECT 1", ("elsewhere",))]}, "unknown: ['elsewhere']"),
        ({"views": [View("Bad-Name", "SELECT 1", ("notes",))]}, "the name must match"),
        ({"reports": [Report("quality", "Mine.", "SELECT 1")]}, "is a built-in report"),
        ({"reports": [Report("mine", "Mine.", "SELECT 1", figures="ALTER x")]}, "figures must"),
        ({"settings": [PluginSetting("Limit", 1, "x")]}, "the name must match"),
        ({"settings": [PluginSetting("limit", [1], "x")]}, "must be an int, float, str or bool"),
        ({"settings": ["note_limit"]}, "not a PluginSetting"),
        ({"tracker_scripts": [TrackerScript("Notes!", "a();")]}, "the name must match"),
        ({"tracker_scripts": [TrackerScript("notes", "  ")]}, "source must be"),
    ],
)
def test_an_invalid_contribution_stops_start_up(contribution, complaint) -> None:
    with pytest.raises(RegistryError, match=re.escape(complaint)):
        registry_of(contributing(event_types=[note_type()], **contribution))


def test_a_query_may_start_with_comments() -> None:
    view = View("lengths", "-- why\n\n  -- and how\nWITH 1 AS one SELECT one", ("notes",))
    assert registry_of(contributing(event_types=[note_type()], views=[view])).views


def test_a_bad_plugin_setting_stops_start_up_naming_its_variable() -> None:
    registry = registry_of(contributing(settings=[LIMIT]))
    settings = Settings.from_env({"CLICKSTREAM_NOTE_LIMIT": "ten"})
    with pytest.raises(ConfigError, match="CLICKSTREAM_NOTE_LIMIT='ten' is invalid"):
        registry.check_settings(settings)
    registry.check_settings(Settings.from_env({"CLICKSTREAM_NOTE_LIMIT": "12"}))


def test_the_built_in_page_view_plugin_uses_only_these_hooks() -> None:
    registry = build_registry(make_plugin_manager())
    page_views = registry["page_view_start"].plugin
    assert registry.settings["page_view_timeout_s"].plugin == page_views
    assert registry.views["page_view_durations"].plugin == page_views
    assert registry.reports["pageviews"].plugin == page_views


def test_event_types_sharing_a_generated_table_get_the_columns_of_all_their_schemas():
    class One(Schema):
        a = Text(required=True)

    class Two(Schema):
        b = Text(required=True)

    class Plugin:
        @hookimpl
        def register_event_types(self):
            return [
                EventType("one", One, "shared", example={"a": "x"}),
                EventType("two", Two, "shared", example={"b": "y"}),
            ]

    registry = build_registry(
        make_plugin_manager(extra_plugins=[Plugin()], load_entry_points=False)
    )

    assert registry["one"].ddl == registry["two"].ddl == table_ddl(One, Two)
    assert registry["one"].columns == registry["two"].columns == ("a", "b")
    row = registry["one"].row({**envelope("one", {}), "data": {"a": "x"}})
    assert (row["a"], row["b"]) == ("x", None)


def test_event_types_sharing_a_generated_table_need_one_sort_key():
    class One(Schema):
        a = Text(required=True)

    class Plugin:
        @hookimpl
        def register_event_types(self):
            return [
                EventType("one", One, "shared", example={"a": "x"}, order_by="a"),
                EventType("two", One, "shared", example={"a": "y"}),
            ]

    with pytest.raises(RegistryError, match="different order_by"):
        build_registry(make_plugin_manager(extra_plugins=[Plugin()], load_entry_points=False))
