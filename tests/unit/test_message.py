"""The message's own promises: UTC timestamps whatever the server's zone, and its bytes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from uuid import RFC_4122, UUID

import orjson
import pytest

from core.message import (
    DEFAULT_MAX_CLOCK_SKEW,
    client_time,
    decode,
    encode,
    envelope_columns,
    envelope_error,
    format_timestamp,
    new_event_id,
)


@pytest.fixture
def local_zone_east_of_utc(monkeypatch):
    """The process's local time zone is UTC+05:00 for the test."""
    monkeypatch.setenv("TZ", "XYZ-5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_timestamp_is_utc_even_when_the_server_is_not(local_zone_east_of_utc) -> None:
    moment = datetime(2026, 11, 28, 10, 0, 0, 123456, tzinfo=UTC)
    assert format_timestamp(moment) == "2026-11-28T10:00:00.123Z"
    east = moment.astimezone(timezone(timedelta(hours=-7)))
    assert format_timestamp(east) == "2026-11-28T10:00:00.123Z"


def test_a_message_round_trips_through_its_bytes() -> None:
    message = {"event_id": "e1", "event": "element_click", "data": {"title": "фильм"}}
    raw = encode(message)
    assert orjson.loads(raw) == message
    assert decode(raw) == message


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_bytes_that_are_json_but_not_an_object_are_not_a_message(raw: bytes) -> None:
    with pytest.raises(TypeError):
        decode(raw)


def test_bytes_that_are_not_json_are_not_a_message() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        decode(b"{not json")


SERVER = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("skew", "kept"),
    [
        (timedelta(0), True),
        (timedelta(minutes=7), True),
        (timedelta(minutes=-7), True),
        (DEFAULT_MAX_CLOCK_SKEW, True),
        (-DEFAULT_MAX_CLOCK_SKEW, True),
        (DEFAULT_MAX_CLOCK_SKEW + timedelta(milliseconds=1), False),
        (-DEFAULT_MAX_CLOCK_SKEW - timedelta(milliseconds=1), False),
        (timedelta(days=365), False),
    ],
)
def test_client_time_is_the_server_time_less_the_skew_within_its_bound(skew, kept) -> None:
    sent_at = SERVER - skew
    expected = SERVER - (SERVER - sent_at) if kept else None
    assert client_time(SERVER, sent_at) == expected


def test_no_sent_at_no_client_time() -> None:
    assert client_time(SERVER, None) is None


def test_the_bound_is_a_parameter() -> None:
    sent_at = SERVER - timedelta(seconds=61)
    assert client_time(SERVER, sent_at, timedelta(seconds=60)) is None
    assert client_time(SERVER, sent_at, timedelta(seconds=61)) == sent_at


OLD_MESSAGE = {
    "event_id": "6f1c2f0e-3a55-4bd4-9d56-5d0b8c6f4b7e",
    "event": "element_click",
    "timestamp": "2026-11-28T10:00:00.123Z",
    "user_id": "anonymous",
    "identity": "anonymous",
    "data": {},
}


def test_a_message_from_before_the_visitor_fields_has_empty_visitor_columns() -> None:
    columns = envelope_columns(OLD_MESSAGE)
    assert {key: columns[key] for key in list(columns)[6:]} == {
        "anonymous_id": None,
        "session_id": None,
        "sent_at": None,
        "client_time": None,
        "device": "",
        "browser": "",
        "os": "",
        "is_bot": False,
    }
    assert envelope_error(OLD_MESSAGE) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("anonymous_id", 7),
        ("session_id", {}),
        ("sent_at", "soon"),
        ("client_time", 3),
        ("is_bot", 1),
    ],
)
def test_a_message_with_a_bad_visitor_field_has_a_bad_envelope(key, value) -> None:
    assert key in envelope_error({**OLD_MESSAGE, key: value})


def test_event_ids_are_random_version_4_uuids_in_their_usual_spelling() -> None:
    ids = {new_event_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in ids:
        parsed = UUID(text)
        assert (parsed.version, parsed.variant) == (4, RFC_4122)
        assert str(parsed) == text
