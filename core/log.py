"""Structured JSON log lines, and the request id that ties an event's lines together.

The API binds a request id for each request (``core/api/observability.py``), the
pipeline copies it into the Kafka message as ``request_id``, and the ETL logs it
beside the event id: one grep follows an event from the HTTP request to the warehouse.
"""

from __future__ import annotations

import logging
import logging.config
import os
import re
import threading
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

from core.config import LogSettings

#: The id of the request being served by this thread, or None outside a request.
_REQUEST_ID: ContextVar[str | None] = ContextVar("clickstream_request_id", default=None)

#: What a client-supplied id may look like; anything else is replaced by a fresh id.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)

#: Libraries whose INFO lines are noise next to ours.
_QUIET_LOGGERS = ("kafka", "urllib3", "clickhouse_connect")


def current_request_id() -> str | None:
    """The request id bound to the current thread (or task), if any."""
    return _REQUEST_ID.get()


def bind_request_id(candidate: str | None) -> str:
    """Bind ``candidate`` as the current request id if it is well-formed, else a new id.

    Returns the id bound. A client's id is kept so that its own logs and ours join up;
    a malformed or oversized one is replaced rather than echoed into every log line.
    """
    if candidate is None or not _VALID_REQUEST_ID.fullmatch(candidate):
        candidate = os.urandom(16).hex()
    _REQUEST_ID.set(candidate)
    return candidate


def unbind_request_id() -> None:
    """Forget the current request id (the thread goes on to serve other requests)."""
    _REQUEST_ID.set(None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and any ``extra``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = _REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def logconfig_dict(settings: LogSettings) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dictionary: every logger as JSON on stderr.

    gunicorn takes it as its ``logconfig_dict`` setting, so its own lines (worker
    boots, timeouts) come out as JSON too.
    """
    level = settings.level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            # gunicorn's defaults give these their own text handlers; route them to ours.
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
            **{name: {"level": "WARNING"} for name in _QUIET_LOGGERS},
        },
    }


def configure(settings: LogSettings) -> None:
    """Send every log line of this process to stderr as JSON, at ``settings.level``.

    The JSON lines never show a record's source line, thread or process, so the logging
    module is told not to collect them (the logging HOWTO's "Optimization"): the caller's
    frame lookup alone was a third of an access log line's cost, paid on every request.
    """
    logging.config.dictConfig(logconfig_dict(settings))
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


class RateLimitedWarning:
    """Logs a warning at most once per interval per topic, counting what was suppressed."""

    def __init__(self, logger: logging.Logger, every_s: float, clock: Callable[[], float]) -> None:
        self._log = logger
        self._every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, topic: str, message: str, *args: object) -> None:
        now = self._clock()
        with self._lock:
            last = self._last.get(topic)
            if last is not None and now - last < self._every_s:
                self._suppressed[topic] = self._suppressed.get(topic, 0) + 1
                return
            self._last[topic] = now
            suppressed = self._suppressed.pop(topic, 0)
        if suppressed:
            message += " (%d similar warnings suppressed)"
            args = (*args, suppressed)
        self._log.warning(message, *args)
