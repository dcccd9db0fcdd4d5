"""core.testing: it passes every built-in plugin, and fails a broken one saying what to fix."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from marshmallow import Schema

from core import EventType, Integer, Text, envelope_columns, hookimpl, testing
from core.host.plugin_manager import make_plugin_manager
from core.message import ENVELOPE_COLUMNS, ENVELOPE_COLUMNS_DDL
from core.testing import CheckedPlugin, PluginCheckError, check_plugin

BUILT_IN = dict(sorted(make_plugin_manager().list_name_plugin()))
EVENT = "score_given"
EXAMPLE = {"video_id": "tt0079944", "score": 9, "review": "Шедевр"}


class ScoreSchema(Schema):
    video_id = Text(max_length=32, required=True)
    score = Integer(min=1, max=10, required=True)
    review = Text(max_length=100, load_default=None)


class Plugin:
    """A plugin object contributing ``event_types``."""

    def __init__(self, *event_types: EventType) -> None:
        self.event_types = event_types

    @hookimpl
    def register_event_types(self) -> list[EventType]:
        return list(self.event_types)


def score_given(**changes: Any) -> EventType:
    fields: dict[str, Any] = {
        "name": EVENT,
        "schema": ScoreSchema,
        "table": "scores",
        "example": EXAMPLE,
        **changes,
    }
    return EventType(**fields)


def mapped(change: Callable[[dict[str, Any]], Mapping[str, Any]]) -> EventType:
    """The event type with a mapper that changes the default row."""
    return score_given(
        to_row=lambda message: change({**envelope_columns(message), **message["data"]})
    )


def failure(plugin: object) -> str:
    with pytest.raises(PluginCheckError) as raised:
        check_plugin(plugin)
    return str(raised.value)


@pytest.fixture(scope="module")
def checked() -> CheckedPlugin:
    return check_plugin(Plugin(score_given()))


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_built_in_plugin_passes(name: str) -> None:
    checked = check_plugin(BUILT_IN[name])
    assert checked.registry.names
    for event_type in checked.registry:
        assert list(checked.rows[event_type.name]) == [
            column.name for column in checked.columns[event_type.table]
        ]


def test_what_it_found_is_the_plugins_registry_rows_and_columns(checked: CheckedPlugin) -> None:
    assert checked.registry.names == [EVENT]
    row = checked.rows[EVENT]
    assert list(row)[: len(ENVELOPE_COLUMNS)] == list(ENVELOPE_COLUMNS)
    assert (row["video_id"], row["score"], row["review"]) == ("tt0079944", 9, "Шедевр")
    assert (row["user_id"], row["identity"], row["schema_version"]) == ("anonymous", "anonymous", 1)
    assert [(c.name, c.type) for c in checked.columns["scores"]][-3:] == [
        ("video_id", "String"),
        ("score", "UInt8"),
        ("review", "Nullable(String)"),
    ]


def test_a_token_stands_for_its_user(checked: CheckedPlugin) -> None:
    row = checked.row(EVENT, EXAMPLE, token="user-42")
    assert (row["user_id"], row["identity"]) == ("user-42", "verified")


def test_the_message_is_published_unchanged_in_the_envelope(checked: CheckedPlugin) -> None:
    message = checked.publish(EVENT, checked.example(EVENT, review=...))
    assert message["data"] == {"video_id": "tt0079944", "score": 9}
    assert message["event"] == EVENT and "token" not in message


def test_stored_reads_the_row_back_from_the_table(checked: CheckedPlugin) -> None:
    stored = checked.stored(EVENT, checked.example(EVENT, review="ё" * 100))
    assert stored["review"] == "ё" * 100
    assert list(stored) == [column.name for column in checked.columns["scores"]]


def test_assert_refused_returns_the_details_naming_the_fields(checked: CheckedPlugin) -> None:
    details = checked.assert_refused(EVENT, checked.example(EVENT, score=11, video_id=...), "score")
    assert set(details) == {"data.score", "data.video_id"}


def test_assert_refused_fails_when_the_data_is_accepted(checked: CheckedPlugin) -> None:
    with pytest.raises(PluginCheckError, match="answered 202, not 422"):
        checked.assert_refused(EVENT, EXAMPLE, "score")


def test_assert_refused_fails_when_another_field_is_named(checked: CheckedPlugin) -> None:
    with pytest.raises(PluginCheckError, match=r"does not name data\.review; it names"):
        checked.assert_refused(EVENT, checked.example(EVENT, score=0), "review")


def test_row_fails_for_data_the_api_refuses(checked: CheckedPlugin) -> None:
    with pytest.raises(PluginCheckError, match="answered 422, not 202.*data.score"):
        checked.row(EVENT, checked.example(EVENT, score="9"))


def test_an_unknown_event_is_named_with_the_plugins_own(checked: CheckedPlugin) -> None:
    with pytest.raises(PluginCheckError, match=r"no event type 'scores_given'.*\['score_given'\]"):
        checked.example("scores_given")


def test_a_broken_example_fails_start_up() -> None:
    message = failure(Plugin(score_given(example={"video_id": "tt1", "score": 11})))
    assert "clickstream would not start with plugin" in message
    assert "its example is invalid" in message and "score" in message


def test_a_misspelled_hook_fails_start_up() -> None:
    class Misspelled:
        @hookimpl
        def register_event_type(self) -> list[EventType]:
            return [score_given()]

    assert "unknown hook 'register_event_type'" in failure(Misspelled())


def test_a_plugin_without_event_types_fails() -> None:
    assert "adds no event type" in failure(Plugin())


def test_an_event_name_of_an_installed_plugin_fails() -> None:
    message = failure(Plugin(score_given(name="page_view_start")))
    assert "with the plugins installed here" in message
    assert "'page_view_start' is claimed by two plugins" in message


def test_a_row_missing_a_column_fails() -> None:
    message = failure(Plugin(mapped(lambda row: {k: v for k, v in row.items() if k != "score"})))
    assert "lacks the column(s) ['score']" in message
    assert "table 'scores'" in message


def test_a_row_of_an_optional_field_left_out_fails() -> None:
    # Only the example without its review shows it: the check sends that too.
    message = failure(Plugin(mapped(lambda row: {k: v for k, v in row.items() if v is not None})))
    assert "lacks the column(s) ['review']" in message
    assert "load_default=None" in message


def test_a_row_with_a_key_of_no_column_fails() -> None:
    message = failure(Plugin(mapped(lambda row: {**row, "stars": row["score"]})))
    assert "key(s) ['stars'] that are no column" in message


def test_a_row_out_of_column_order_fails() -> None:
    message = failure(Plugin(mapped(lambda row: dict(reversed(row.items())))))
    assert "not in the table's column order" in message


def test_a_mapper_producing_a_wrong_type_fails_naming_the_column() -> None:
    message = failure(Plugin(mapped(lambda row: {**row, "score": str(row["score"])})))
    assert "column score (UInt8): the row holds '9' (str), the table gives back 9 (int)" in message


def test_a_mapper_producing_a_value_the_column_cannot_hold_fails_naming_it() -> None:
    message = failure(Plugin(mapped(lambda row: {**row, "score": row["score"] * 100})))
    assert "ClickHouse cannot insert the row: column score (UInt8) cannot hold 900" in message


def test_a_mapper_failing_on_an_absent_optional_field_fails() -> None:
    message = failure(Plugin(mapped(lambda row: {**row, "review": row["review"].strip()})))
    assert "to_row raised AttributeError" in message
    assert "mapper_error" in message


def test_a_mapper_returning_no_dict_fails() -> None:
    message = failure(Plugin(score_given(to_row=lambda message: list(message))))
    assert "to_row returned list, not a dict" in message


def test_a_hand_written_table_may_leave_out_a_column_with_a_default() -> None:
    ddl = (
        "CREATE TABLE IF NOT EXISTS {database}.{table} (\n    "
        + ENVELOPE_COLUMNS_DDL
        + ",\n    video_id String,\n    score UInt8,\n    review String DEFAULT ''\n)"
        "\nENGINE = ReplacingMergeTree ORDER BY (video_id, event_id)"
    )
    event_type = score_given(
        ddl=ddl,
        to_row=lambda message: {
            k: v
            for k, v in {**envelope_columns(message), **message["data"]}.items()
            if v is not None
        },
    )
    checked = check_plugin(Plugin(event_type))
    assert checked.stored(EVENT, checked.example(EVENT, review=...))["review"] == ""


def test_a_hand_written_table_clickhouse_refuses_fails() -> None:
    ddl = (
        "CREATE TABLE IF NOT EXISTS {database}.{table} (\n    "
        + ENVELOPE_COLUMNS_DDL
        + ",\n    video_id Strin,\n    score UInt8,\n    review Nullable(String)\n)"
        "\nENGINE = MergeTree ORDER BY event_id"
    )
    message = failure(Plugin(score_given(ddl=ddl)))
    assert "ClickHouse refuses the DDL of table 'scores'" in message
    assert "video_id Strin" in message


def test_its_docstring_lists_every_exported_name() -> None:
    for name in testing.__all__:
        assert f"``{name}" in testing.__doc__, name
