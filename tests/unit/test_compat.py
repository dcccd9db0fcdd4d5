"""Schema evolution (``core.api.compat``): breaking changes to the published document found,
and refused unless the event type's version is bumped."""

from __future__ import annotations

import pytest
from marshmallow import Schema, fields, validate

from core import EventType
from core.api.compat import check, compare
from core.api.openapi import build_spec
from core.host.fields import StrictInteger, Text
from core.host.plugin_manager import build_registry, is_built_in, make_plugin_manager
from core.host.registry import Registry
from core.message import ENVELOPE_COLUMNS_DDL

DDL = f"CREATE TABLE IF NOT EXISTS {{database}}.{{table}} ({ENVELOPE_COLUMNS_DDL}) ENGINE = Memory"


MOVIE = "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b"


class Rating(Schema):
    """The published shape every case below changes one thing of."""

    movie_id = fields.UUID(required=True)
    score = StrictInteger(required=True, validate=validate.Range(min=1, max=10))
    review = Text(max_length=2000, load_default=None, allow_none=True)
    source = fields.String(validate=validate.OneOf(["web", "tv"]), load_default=None)
    tags = fields.Dict(keys=fields.String(), values=Text(max_length=32), load_default=dict)


def document(*schemas: type[Schema], version: int = 1, name: str = "rating_submitted") -> dict:
    """The OpenAPI document of one event type per schema (the first is ``name``)."""
    event_types = [
        EventType(
            name=name if index == 0 else f"other_{index}",
            schema=schema,
            table="ratings",
            ddl=DDL,
            example={"movie_id": MOVIE, "score": 5, **getattr(schema, "example_changes", {})},
            version=version if index == 0 else 1,
        )
        for index, schema in enumerate(schemas)
    ]
    return build_spec(Registry([("test", event_types)]))


def changes_to(schema: type[Schema], version: int = 1) -> list[tuple[str, str, bool, bool]]:
    found = compare(document(Rating), document(schema, version=version))
    return [(c.where, c.what, c.breaking, c.refused) for c in found]


def refused(schema: type[Schema], version: int = 1) -> list[str]:
    return [where for where, _, _, is_refused in changes_to(schema, version) if is_refused]


class AddedOptional(Rating):
    watched_s = StrictInteger(load_default=None)


class AddedRequired(Rating):
    example_changes = {"watched_s": 1}
    watched_s = StrictInteger(required=True)


class Removed(Rating):
    class Meta:
        exclude = ("review",)


class Retyped(Rating):
    example_changes = {"score": "5"}
    score = fields.String(required=True)


class NowRequired(Rating):
    example_changes = {"review": "ok"}
    review = Text(max_length=2000, required=True)


class Narrowed(Rating):
    score = StrictInteger(required=True, validate=validate.Range(min=1, max=5))


class Widened(Rating):
    score = StrictInteger(required=True, validate=validate.Range(min=0, max=100))
    review = Text(max_length=4000, load_default=None, allow_none=True)


class ShorterText(Rating):
    review = Text(max_length=500, load_default=None, allow_none=True)


class EnumDropped(Rating):
    source = fields.String(validate=validate.OneOf(["web"]), load_default=None)


class EnumAdded(Rating):
    source = fields.String(validate=validate.OneOf(["web", "tv", "app"]), load_default=None)


class NestedNarrowed(Rating):
    tags = fields.Dict(keys=fields.String(), values=Text(max_length=8), load_default=dict)


def test_an_unchanged_schema_has_no_change() -> None:
    assert changes_to(Rating) == []


def test_an_added_optional_field_is_safe() -> None:
    assert changes_to(AddedOptional) == [
        ("rating_submitted.data.watched_s", "optional field added", False, False)
    ]


def test_widened_bounds_and_added_choices_are_safe() -> None:
    assert refused(Widened) == []
    assert refused(EnumAdded) == []
    assert changes_to(EnumAdded)[0][1] == "values added: ['app']"


@pytest.mark.parametrize(
    ("schema", "where", "what"),
    [
        (AddedRequired, "data.watched_s", "required field added"),
        (Removed, "data.review", "field removed"),
        (Retyped, "data.score", "type changed from integer to string"),
        (NowRequired, "data.review", "now required"),
        (Narrowed, "data.score", "maximum changed from 10 to 5"),
        (ShorterText, "data.review", "maxLength changed from 2000 to 500"),
        (EnumDropped, "data.source", "values no longer accepted: ['tv']"),
        (NestedNarrowed, "data.tags.*", "maxLength changed from 32 to 8"),
    ],
)
def test_a_breaking_change_is_refused_unless_the_version_is_bumped(
    schema: type[Schema], where: str, what: str
) -> None:
    found = changes_to(schema)
    assert (f"rating_submitted.{where}", what, True, True) in found

    bumped = changes_to(schema, version=2)
    assert (f"rating_submitted.{where}", what, True, False) in bumped
    assert ("rating_submitted", "version bumped from 1 to 2", False, False) in bumped
    assert not any(is_refused for *_, is_refused in bumped)


def test_a_version_going_back_is_refused() -> None:
    changes = compare(document(Rating, version=3), document(Rating, version=2))
    assert [(c.what, c.refused) for c in changes] == [("version went back from 3 to 2", True)]


def test_a_removed_event_type_is_refused_and_a_new_one_is_safe() -> None:
    both, one = document(Rating, AddedOptional), document(Rating)
    [removed] = compare(both, one)
    assert (removed.event, removed.what, removed.refused) == (
        "other_1",
        "event type removed: clients sending it are refused",
        True,
    )
    [added] = compare(one, both)
    assert (added.what, added.refused) == ("new event type (version 1)", False)


def test_the_current_tree_matches_the_published_document() -> None:
    registry = build_registry(make_plugin_manager(), keep=is_built_in)
    assert [str(change) for change in check(registry) if change.refused] == []
