"""What a client is told (``core.ingest.errors``): one shape for every refusal, and
marshmallow's nested messages flattened to the fields at fault."""

from __future__ import annotations

import pytest

from core.ingest.errors import ApiError, flatten_messages


def test_an_error_is_its_code_message_details_and_extra() -> None:
    error = ApiError(
        422,
        "unknown_event",
        "Unknown event 'x'.",
        {"event": ["Unknown event."]},
        extra={"known_events": ["element_click"]},
        headers={"Retry-After": "1"},
    )
    assert error.to_dict() == {
        "error": "unknown_event",
        "message": "Unknown event 'x'.",
        "details": {"event": ["Unknown event."]},
        "known_events": ["element_click"],
    }
    assert (error.status, error.headers, str(error)) == (422, {"Retry-After": "1"}, error.message)


def test_an_error_without_details_has_an_empty_object_of_them() -> None:
    error = ApiError(400, "invalid_json", "The body is not JSON.")
    assert error.to_dict() == {
        "error": "invalid_json",
        "message": "The body is not JSON.",
        "details": {},
    }
    assert error.headers == {}


@pytest.mark.parametrize(
    ("messages", "flat"),
    [
        (
            {"data": {"position": ["Not a valid integer."]}},
            {"data.position": ["Not a valid integer."]},
        ),
        ({"data": {"filters": {"genre": ["Too long."]}}}, {"data.filters.genre": ["Too long."]}),
        ({"data": {"_schema": ["Give a query."]}}, {"data": ["Give a query."]}),
        ({"_schema": ["Invalid input type."]}, {"_schema": ["Invalid input type."]}),
        ({"data": [{"a": ["Bad."]}, "Worse."]}, {"data.a": ["Bad."], "data": ["Worse."]}),
        (
            {"event": ["One.", "Two."], "token": ["Three."]},
            {"event": ["One.", "Two."], "token": ["Three."]},
        ),
        ({0: {"event": ["Missing."]}}, {"0.event": ["Missing."]}),
        ("Not an object.", {"_schema": ["Not an object."]}),
    ],
)
def test_nested_messages_are_flattened_to_the_fields_at_fault(messages, flat) -> None:
    assert flatten_messages(messages) == flat
