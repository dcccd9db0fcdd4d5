"""The message's own promises: UTC timestamps whatever the server's zone, and its bytes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from core.message import decode, encode, format_timestamp


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
