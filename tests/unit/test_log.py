"""JSON log lines, the request id that joins them (``core.log``), and gunicorn's logging."""

from __future__ import annotations

import logging
import logging.config
import re
import uuid

import pytest

from core.config import Settings
from core.log import (
    JsonFormatter,
    bind_request_id,
    current_request_id,
    logconfig_dict,
    unbind_request_id,
)


def test_a_line_is_json_with_extras_request_id_and_exception(log_lines):
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
    first, second = log_lines()
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


def test_the_logging_configuration_routes_gunicorn_through_json():
    config = logconfig_dict(Settings.of(log_level="debug").log)
    assert config["root"]["level"] == "DEBUG"
    assert config["loggers"]["gunicorn.error"]["propagate"] is True
    assert config["loggers"]["kafka"]["level"] == "WARNING"
    formatter = logging.config.DictConfigurator(config).configure_formatter(
        config["formatters"]["json"]
    )
    assert isinstance(formatter, JsonFormatter)


def test_the_json_lines_need_nothing_configure_stops_collecting(monkeypatch) -> None:
    """configure() turns off the caller's frame lookup, thread and process names: the JSON
    line (what an access log line is made of) is the same without them."""
    import json

    lines: list[dict] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            line = json.loads(JsonFormatter().format(record))
            line.pop("time")
            lines.append(line)

    log = logging.getLogger("core.test.collect")
    monkeypatch.setattr(log, "propagate", False)
    log.addHandler(Capture())
    log.setLevel(logging.INFO)
    log.info("http.request", extra={"status": 202})
    for flag in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, flag, None if flag == "_srcfile" else False)
    log.info("http.request", extra={"status": 202})
    assert (
        lines[0]
        == lines[1]
        == {
            "level": "INFO",
            "logger": "core.test.collect",
            "message": "http.request",
            "status": 202,
        }
    )
