"""The ETL's line per event, with the request id its message carries (``etl.trace``)."""

from __future__ import annotations

import uuid

import orjson
import pytest

from etl.trace import log_events, request_id_of
from etl.transform import Loaded, Rejected
from tests.etl_helpers import kafka_record


def test_the_etl_logs_each_event_with_its_request_id(log_lines):
    loaded = Loaded(
        kafka_record(orjson.dumps({"event_id": "x", "request_id": "req-9"}), 7),
        "element_click",
        uuid.UUID(int=7),
        None,  # type: ignore[arg-type]
        "element_clicks",
        {},  # type: ignore[arg-type]
    )
    rejected = Rejected(kafka_record(b"not json", 8), "not_json", "bad")
    log_events("pass-1", [loaded], [rejected])
    first, second = log_lines()
    assert first["message"] == "etl.event_loaded" and first["level"] == "DEBUG"
    assert first["request_id"] == "req-9" and first["event_id"] == str(uuid.UUID(int=7))
    assert first["offset"] == 7 and first["pass_id"] == "pass-1"
    assert second["message"] == "etl.event_dead_lettered" and second["reason"] == "not_json"
    assert second["request_id"] is None and second["level"] == "INFO"


@pytest.mark.parametrize("value", [b"", b"[1]", b'{"request_id": 5}', b"\xff"])
def test_a_message_without_a_usable_request_id_has_none(value):
    assert request_id_of(kafka_record(value)) is None
