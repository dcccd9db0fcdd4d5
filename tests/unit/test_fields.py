"""The field kinds of core: what each accepts and refuses, validators composed, their columns."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from marshmallow import Schema, ValidationError, fields, validate

from core import (
    UUID,
    Boolean,
    Choice,
    Integer,
    Number,
    PositiveInteger,
    StrictBoolean,
    StrictInteger,
    Text,
    Timestamp,
)
from core.host.fields import MAX_TEXT


def load(field: fields.Field, value: Any) -> Any:
    """``value`` loaded by a schema whose one field ``value`` is ``field``."""
    schema = Schema.from_dict({"value": field})()
    return schema.load({"value": value})["value"]


def refused(field: fields.Field, value: Any) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        load(field, value)
    return raised.value.messages["value"]


def no_digits(value: str) -> None:
    if any(character.isdigit() for character in value):
        raise ValidationError("No digits.")


def test_the_issues_choice_of_text_no_longer_crashes() -> None:
    # Text(..., validate=OneOf(...)) raised "got multiple values for keyword argument 'validate'".
    field = Text(max_length=8, validate=validate.OneOf(["auto", "manual"]))
    assert load(field, "auto") == "auto"
    assert refused(field, "other") == ["Must be one of: auto, manual."]
    assert "Length must be between 1 and 8." in refused(field, "much too long")


@pytest.mark.parametrize(
    "extra",
    [no_digits, [no_digits], (no_digits, validate.Length(max=5))],
    ids=["one", "a list", "a tuple"],
)
def test_text_composes_one_or_several_validators_with_its_length(extra) -> None:
    field = Text(max_length=8, validate=extra)
    assert load(field, "abc") == "abc"
    assert refused(field, "abc1") == ["No digits."]
    assert refused(field, "") == ["Length must be between 1 and 8."]


def test_text_is_bounded_in_characters_and_non_empty_unless_allowed() -> None:
    assert load(Text(max_length=3), "ёжи") == "ёжи"
    assert refused(Text(max_length=3), "ёжик") == ["Length must be between 1 and 3."]
    assert load(Text(allow_empty=True), "") == ""
    assert load(Text(), "x" * MAX_TEXT) == "x" * MAX_TEXT
    assert refused(Text(), "x" * (MAX_TEXT + 1))


@pytest.mark.parametrize("value", [7, 7.5, True, None, ["a"], {"a": 1}])
def test_text_refuses_what_is_not_a_string(value: Any) -> None:
    assert refused(Text(), value)


def test_text_columns() -> None:
    assert Text().column_type() == "String"
    assert Text(low_cardinality=True).column_type() == "LowCardinality(String)"


def test_a_choice_is_one_of_its_values() -> None:
    field = Choice(("auto", "manual"))
    assert [load(field, value) for value in ("auto", "manual")] == ["auto", "manual"]
    for value in ("Auto", "", "other", 1, True, ["auto"]):
        assert refused(field, value), value
    assert field.column_type() == "LowCardinality(String)"


def test_a_choice_composes_validators() -> None:
    def not_legacy(value: str) -> None:
        if value == "legacy":
            raise ValidationError("Retired.")

    field = Choice(["auto", "legacy"], validate=not_legacy)
    assert load(field, "auto") == "auto"
    assert refused(field, "legacy") == ["Retired."]


@pytest.mark.parametrize("values", [(), ("",), ("a", 1)], ids=repr)
def test_a_choice_needs_non_empty_strings(values) -> None:
    with pytest.raises(ValueError, match="Choice needs"):
        Choice(values)


def test_an_integer_is_bounded_by_min_and_max() -> None:
    field = Integer(min=1, max=10)
    assert [load(field, value) for value in (1, 10)] == [1, 10]
    for value in (0, 11, 7.5, 7.0, "7", True, False, None):
        assert refused(field, value), value


def test_an_integer_composes_validators_with_its_bounds() -> None:
    def even(value: int) -> None:
        if value % 2:
            raise ValidationError("Must be even.")

    field = Integer(min=0, max=10, validate=even)
    assert load(field, 4) == 4
    assert refused(field, 3) == ["Must be even."]
    assert refused(field, 12) == [
        "Must be greater than or equal to 0 and less than or equal to 10."
    ]


@pytest.mark.parametrize(
    ("field", "column"),
    [
        (Integer(min=1, max=10), "UInt8"),
        (Integer(min=0, max=255), "UInt8"),
        (Integer(min=0, max=256), "UInt16"),
        (Integer(min=0, max=65535), "UInt16"),
        (Integer(min=0, max=100_000), "UInt32"),
        (Integer(min=0, max=2**32 - 1), "UInt32"),
        (Integer(min=0, max=2**32), "UInt64"),
        (Integer(min=0), "UInt64"),
        (PositiveInteger(), "UInt64"),
        (Integer(min=-5, max=5), "Int8"),
        (Integer(min=-1000, max=1000), "Int16"),
        (Integer(min=-1, max=2**31 - 1), "Int32"),
        (Integer(min=-1, max=2**31), "Int64"),
        (Integer(max=10), "Int64"),
        (Integer(), "Int64"),
        (StrictInteger(validate=validate.Range(min=0, max=65535)), "UInt16"),
        (StrictInteger(validate=validate.Range(min=0, max=256, max_inclusive=False)), "UInt8"),
        (Integer(min=0, validate=validate.Range(max=200)), "UInt8"),
    ],
    ids=lambda item: getattr(item, "column_type", lambda: item)(),
)
def test_an_integers_column_is_the_narrowest_holding_its_bounds(field, column: str) -> None:
    assert field.column_type() == column


def test_an_integer_refuses_what_its_column_cannot_hold() -> None:
    assert load(Integer(), 2**63 - 1) == 2**63 - 1
    assert refused(Integer(), 2**63) == [
        "Must be from -9223372036854775808 to 9223372036854775807."
    ]
    assert load(PositiveInteger(), 2**64 - 1) == 2**64 - 1
    assert refused(PositiveInteger(), 2**64)


def test_an_integer_beyond_every_clickhouse_type_names_no_column() -> None:
    with pytest.raises(ValueError, match="no ClickHouse integer holds every value"):
        Integer(min=0, max=2**64).column_type()


def test_the_older_names_are_the_same_kinds() -> None:
    assert StrictInteger is Integer and StrictBoolean is Boolean
    assert load(StrictInteger(validate=validate.Range(min=1)), 3) == 3
    assert refused(PositiveInteger(), 0)


def test_a_number_is_any_json_number_in_its_bounds() -> None:
    field = Number(min=0, max=5)
    assert load(field, 2.5) == 2.5
    assert load(field, 2) == 2.0 and isinstance(load(field, 2), float)
    for value in (-0.1, 5.1, "2.5", True, float("nan"), float("inf"), None):
        assert refused(field, value), value
    assert field.column_type() == "Float64"


def test_a_boolean_is_true_or_false_only() -> None:
    assert [load(Boolean(), value) for value in (True, False)] == [True, False]
    for value in (1, 0, "true", "yes", None):
        assert refused(Boolean(), value), value
    assert Boolean().column_type() == "Bool"


def test_a_uuid_is_a_string_loaded_as_a_uuid() -> None:
    text = "7f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8"
    assert load(UUID(), text) == uuid.UUID(text)
    for value in ("not-a-uuid", "", 7, uuid.UUID(text).int, None, [text]):
        assert refused(UUID(), value), value
    assert UUID().column_type() == "UUID"


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-11-28T10:00:00.123Z", datetime(2026, 11, 28, 10, 0, 0, 123000, tzinfo=UTC)),
        ("2026-11-28T13:00:00+03:00", datetime(2026, 11, 28, 10, 0, tzinfo=UTC)),
        ("2026-11-28T10:00:00.123456+00:00", datetime(2026, 11, 28, 10, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_a_timestamp_is_an_iso_8601_moment_loaded_in_utc(text: str, moment: datetime) -> None:
    loaded = load(Timestamp(), text)
    assert loaded == moment and loaded.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    ["2026-11-28T10:00:00", "2026-11-28", "yesterday", "", "1800-01-01T00:00:00Z", 1764324000],
)
def test_a_timestamp_without_a_zone_or_out_of_range_is_refused(value: Any) -> None:
    assert refused(Timestamp(), value)
    assert Timestamp().column_type() == "DateTime64(3, 'UTC')"


def never(value: object) -> None:
    raise ValidationError("Never.")


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (Text, "a"),
        (lambda **kwargs: Choice(["a", "b"], **kwargs), "a"),
        (Integer, 1),
        (Number, 1.5),
        (Boolean, True),
        (UUID, "7f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8"),
        (Timestamp, "2026-11-28T10:00:00Z"),
    ],
    ids=["Text", "Choice", "Integer", "Number", "Boolean", "UUID", "Timestamp"],
)
def test_every_kind_takes_a_validator_of_its_authors(kind, value: Any) -> None:
    load(kind(), value)
    assert refused(kind(validate=never), value) == ["Never."]
    assert refused(kind(validate=[never]), value) == ["Never."]


@pytest.mark.parametrize(
    "field",
    [Text(load_default=None), Choice(["a"], load_default=None), Integer(load_default=None)],
    ids=lambda field: type(field).__name__,
)
def test_an_optional_field_may_be_null_or_left_out(field: fields.Field) -> None:
    schema = Schema.from_dict({"value": field})()
    assert schema.load({}) == {"value": None}
    assert schema.load({"value": None}) == {"value": None}
