"""JSON log lines, the request id that joins them, and the ETL's per-event lines."""

from __future__ import annotations

import io
import logging
import logging.config
import re
import uuid

import orjson
import pytest

from core.api import create_app
from core.config import Settings
from core.log import (
    JsonFormatter,
    bind_request_id,
    current_request_id,
    logconfig_dict,
    unbind_request_id,
)
from etl.consume import Record
from etl.trace import log_events, request_id_of
from etl.transform import Loaded, Rejected
from tests.fakes import FakeIdentity, FakePublisher


@pytest.fixture
def lines():
    """Lines logged by ``core`` and ``etl`` loggers through the JSON formatter, parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger(name) for name in ("core", "etl")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield lambda: [orjson.loads(line) for line in stream.getvalue().splitlines()]
    for logger in loggers:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


def test_a_line_is_json_with_extras_request_id_and_exception(lines):
    log = logging.getLogger("core.test")
    bind_request_id("req-1")
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception(
                "it failed", extra={"rows": {"t": 1}, "offset": 5, "who": uuid.UUID(int=1)}
            )
    finally:
        unbind_request_id()
    log.info("outside", extra={"n": 1})
    first, second = lines()
    assert first["message"] == "it failed" and first["level"] == "ERROR"
    assert first["logger"] == "core.test" and first["request_id"] == "req-1"
    assert first["rows"] == {"t": 1} and first["offset"] == 5
    assert first["who"] == str(uuid.UUID(int=1))
    assert "ValueError: boom" in first["exception"]
    assert "request_id" not in second and second["n"] == 1


@pytest.mark.parametrize(
    "candidate",
    [None, "", "has space", "line\nbreak", "x" * 129, "ümlaut", '"quoted"'],
)
def test_a_missing_or_malformed_request_id_is_replaced(candidate):
    bound = bind_request_id(candidate)
    assert re.fullmatch(r"[0-9a-f]{32}", bound) and current_request_id() == bound
    unbind_request_id()
    assert current_request_id() is None


def test_a_well_formed_request_id_is_kept():
    for candidate in ("abc-123", "6f1c2f0e-3a55-4bd4-9d56-5d0b8c6f4b7e", "a" * 128):
        assert bind_request_id(candidate) == candidate
    unbind_request_id()


def test_the_api_echoes_the_request_id_logs_it_and_puts_it_in_the_message(lines):
    publisher = FakePublisher()
    app = create_app(Settings(), identity=FakeIdentity(), publisher=publisher)
    client = app.test_client()
    data = dict(app.extensions["clickstream.pipeline"].registry["element_click"].example)

    answer = client.post(
        "/api/v1/events",
        json={"event": "element_click", "data": data},
        headers={"X-Request-ID": "trace-me-42"},
    )
    fresh = client.post("/api/v1/events", json={"event": "element_click", "data": data})

    assert answer.status_code == 202 and answer.headers["X-Request-ID"] == "trace-me-42"
    assert orjson.loads(publisher.sent[0][1])["request_id"] == "trace-me-42"
    generated = fresh.headers["X-Request-ID"]
    assert orjson.loads(publisher.sent[1][1])["request_id"] == generated != "trace-me-42"
    access = [line for line in lines() if line["message"] == "http.request"]
    assert [line["request_id"] for line in access] == ["trace-me-42", generated]
    assert access[0]["status"] == 202 and access[0]["endpoint"] == "/api/v1/events"
    assert current_request_id() is None


def test_the_access_log_can_be_turned_off(lines):
    app = create_app(
        Settings.of(access_log=False), identity=FakeIdentity(), publisher=FakePublisher()
    )
    app.test_client().get("/health/live")
    assert not [line for line in lines() if line["message"] == "http.request"]


def record(offset: int, value: bytes) -> Record:
    return Record("events", 0, offset, b"k", value, 0)


def test_the_etl_logs_each_event_with_its_request_id(lines):
    loaded = Loaded(
        record(7, orjson.dumps({"event_id": "x", "request_id": "req-9"})),
        "element_click",
        uuid.UUID(int=7),
        None,  # type: ignore[arg-type]
        "element_clicks",
        {},  # type: ignore[arg-type]
    )
    rejected = Rejected(record(8, b"not json"), "not_json", "bad")
    log_events("pass-1", [loaded], [rejected])
    first, second = lines()
    assert first["message"] == "etl.event_loaded" and first["level"] == "DEBUG"
    assert first["request_id"] == "req-9" and first["event_id"] == str(uuid.UUID(int=7))
    assert first["offset"] == 7 and first["pass_id"] == "pass-1"
    assert second["message"] == "etl.event_dead_lettered" and second["reason"] == "not_json"
    assert second["request_id"] is None and second["level"] == "INFO"


@pytest.mark.parametrize("value", [b"", b"[1]", b'{"request_id": 5}', b"\xff"])
def test_a_message_without_a_usable_request_id_has_none(value):
    assert request_id_of(record(0, value)) is None


def test_the_logging_configuration_routes_gunicorn_through_json():
    config = logconfig_dict(Settings.of(log_level="debug").log)
    assert config["root"]["level"] == "DEBUG"
    assert config["loggers"]["gunicorn.error"]["propagate"] is True
    assert config["loggers"]["kafka"]["level"] == "WARNING"
    formatter = logging.config.DictConfigurator(config).configure_formatter(
        config["formatters"]["json"]
    )
    assert isinstance(formatter, JsonFormatter)
