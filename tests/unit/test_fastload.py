"""The compiled loads against marshmallow: never accepting what it refuses, loading the same."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates

from core import UUID, Boolean, Choice, Integer, Number, Text, Timestamp
from core.host.fastload import compile_load
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.message import EnvelopeSchema

REGISTRY = build_registry(make_plugin_manager())


class Echo(fields.Field):
    """A plugin's own kind, which reads the key it was found under and the rest of the data."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        return [attr, data.get("text"), value]


class EveryKind(Schema):
    """Each field kind once, optional and required, with an author's validator beside its own."""

    text = Text(max_length=5, required=True)
    empty_ok = Text(max_length=3, allow_empty=True, load_default=None)
    choice = Choice(("auto", "manual"), load_default=None)
    small = Integer(min=-3, max=300, load_default=None)
    unbounded = Integer(load_default=None)
    ratio = Number(min=0, max=1, load_default=None)
    flag = Boolean(load_default=None)
    id = UUID(load_default=None)
    at = Timestamp(load_default=None)
    even = Integer(validate=lambda n: n % 2 == 0, load_default=None)
    pattern = fields.String(validate=validate.Regexp("^[a-z]+$"), load_default=None)
    mapping = fields.Dict(keys=fields.String(), load_default=None)
    listed = fields.List(fields.Integer(), load_default=None)
    named = Text(data_key="named-key", attribute="renamed", load_default=None)
    counted = Integer(load_default=lambda: 7)
    echo = Echo(data_key="echo-key", load_default=None)
    # A field's own pre_load runs before its null check: marshmallow decides it whole.
    filled = Text(
        allow_none=True, load_default="unset", pre_load=lambda v: "none" if v is None else v
    )


def agrees(schema: Schema, data: Any) -> None:
    """The compiled load of ``schema`` never accepts what marshmallow refuses, and what it
    accepts loads exactly as marshmallow loads it."""
    fast = compile_load(schema)(data)
    try:
        slow = schema.load(data)
    except ValidationError:
        assert fast is None, f"accepted what marshmallow refuses: {data!r}"
        return
    assert fast is None or fast == slow, data


JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(
        [
            "",
            "auto",
            "manual",
            "abc",
            "2026-11-28T10:00:00.123Z",
            "2026-11-28T10:00:00",
            "1800-01-01T00:00:00+00:00",
            str(uuid.uuid4()),
            "not-a-uuid",
            "x" * 70,
            "x" * 5000,
        ]
    ),
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def objects(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects whose keys are mostly the schema's own, with values of every JSON kind."""
    key = st.sampled_from(keys) | st.text(max_size=5)
    return st.dictionaries(key, JSON_VALUE, max_size=len(keys) + 1)


def _keys(schema: Schema) -> list[str]:
    return [field.data_key or name for name, field in schema.load_fields.items()]


SCHEMAS = {
    "envelope": EnvelopeSchema(),
    "every kind": EveryKind(),
    **{event_type.name: REGISTRY.schema(event_type.name) for event_type in REGISTRY},
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_agrees_with_marshmallow_on_generated_objects(name: str, data: st.DataObject) -> None:
    schema = SCHEMAS[name]
    agrees(schema, data.draw(objects(_keys(schema))))


@pytest.mark.parametrize("event_type", list(REGISTRY), ids=lambda event_type: event_type.name)
def test_every_built_in_example_is_accepted_without_marshmallow(event_type) -> None:
    loaded = REGISTRY.fast_load(event_type.name)(dict(event_type.example))
    assert loaded == REGISTRY.schema(event_type.name).load(dict(event_type.example))


VALID = {"text": "abc"}


@pytest.mark.parametrize(
    "data",
    [
        {"text": "abc", "small": True},  # a boolean is not an integer
        {"text": "abc", "small": 301},
        {"text": "abc", "small": 3.0},
        {"text": "abc", "unbounded": 2**64},  # beyond Int64, the column
        {"text": "abc", "ratio": float("nan")},
        {"text": "abc", "ratio": "0.5"},
        {"text": "abc", "ratio": 2},
        {"text": "abc", "flag": 1},
        {"text": "abc", "id": "not-a-uuid"},
        {"text": "abc", "at": "2026-11-28T10:00:00"},  # no zone
        {"text": "abc", "even": 3},  # the author's callable returned False
        {"text": "abc", "pattern": "ABC"},
        {"text": "abc", "mapping": []},
        {"text": "abc", "listed": ["x"]},
        {"text": "abc", "other": 1},  # unknown field
        {"text": ""},
        {"text": None},
        {},
        [VALID],
    ],
)
def test_refused_values_are_left_to_marshmallow(data: Any) -> None:
    assert compile_load(EveryKind())(data) is None
    agrees(EveryKind(), data)


def test_loads_values_as_marshmallow_does() -> None:
    moment = "2026-11-28T12:00:00.5+02:00"
    page = str(uuid.uuid4())
    data = {
        "text": "abc",
        "ratio": 1,
        "id": page,
        "at": moment,
        "named-key": "n",
        "listed": [1],
        "echo-key": 5,
    }
    loaded = compile_load(EveryKind())(data)
    assert loaded == EveryKind().load(data)
    assert loaded["ratio"] == 1.0 and isinstance(loaded["ratio"], float)
    assert loaded["id"] == uuid.UUID(page)
    assert loaded["at"] == datetime(2026, 11, 28, 10, 0, 0, 500000, tzinfo=UTC)
    assert loaded["renamed"] == "n" and loaded["counted"] == 7 and loaded["choice"] is None
    assert loaded["echo"] == ["echo-key", "abc", 5]
    assert loaded["filled"] == "unset"
    assert compile_load(EveryKind())({**data, "filled": None})["filled"] == "none"


def test_schema_validators_run_on_the_loaded_data() -> None:
    load = REGISTRY.fast_load("search_filter")
    assert load({"search_query": "drama", "filters": ""}) is not None
    assert load({"search_query": " ", "filters": ""}) is None


class WithPostLoad(Schema):
    name = Text()

    @post_load
    def _shout(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {"name": data["name"].upper()}


class WithFieldValidator(Schema):
    name = Text()

    @validates("name")
    def _not_bob(self, value: str, **kwargs: Any) -> None:
        if value == "bob":
            raise ValidationError("Not bob.")


class Excluding(Schema):
    class Meta:
        unknown = EXCLUDE

    name = Text()


@pytest.mark.parametrize("schema", [WithPostLoad(), WithFieldValidator(), Excluding()])
def test_schemas_with_hooks_it_does_not_run_always_go_to_marshmallow(schema: Schema) -> None:
    assert compile_load(schema)({"name": "bob"}) is None
