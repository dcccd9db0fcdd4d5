"""The plugin manager and the registry refuse broken or conflicting plugins."""

from __future__ import annotations

import itertools

import pytest
from marshmallow import Schema

from core import EventType, hookimpl
from core.ddl import ENVELOPE_COLUMNS_DDL
from core.fields import Text
from core.plugin_manager import build_registry, make_plugin_manager
from core.registry import RegistryError

PLUGIN_NUMBERS = itertools.count(1)
DDL = f"CREATE TABLE IF NOT EXISTS {{database}}.{{table}} ({ENVELOPE_COLUMNS_DDL}) ENGINE = Memory"


class NoteSchema(Schema):
    text = Text(required=True, max_length=10)


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


def test_a_misspelled_hook_stops_start_up() -> None:
    class Misspelled:
        @hookimpl
        def register_event_type(self):
            return [note_type()]

    with pytest.raises(RegistryError, match="register_event_type"):
        make_plugin_manager([Misspelled()], load_entry_points=False)


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"name": "Bad Name"}, "name must match"),
        ({"table": "bad-table"}, "table must match"),
        ({"ddl": "CREATE TABLE t (x UInt8)"}, "ddl must be"),
        ({"schema": dict}, "marshmallow Schema"),
        ({"example": {"text": ""}}, "example is invalid"),
        ({"to_row": "not callable"}, "to_row must be callable"),
    ],
)
def test_an_invalid_event_type_stops_start_up(changes, complaint) -> None:
    with pytest.raises(RegistryError, match=complaint):
        registry_of(plugin(note_type(**changes)))


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
