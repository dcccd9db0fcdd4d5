"""Kafka record -> validated message -> the plugin's row, or a dead letter saying why not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from marshmallow import ValidationError

from core.host.registry import MAX_VERSION, Registry, Row
from core.message import FIRST_SCHEMA_VERSION

#: Envelope keys the ETL needs; ``schema_version`` is optional (older messages lack it),
#: other keys (request_id, ...) are ignored.
ENVELOPE_KEYS = ("event_id", "event", "timestamp", "user_id", "identity", "data")

#: Why a message went to the dead-letter table (the ``reason`` column).
NOT_JSON = "not_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_ENVELOPE = "missing_envelope"
BAD_ENVELOPE = "bad_envelope"
UNKNOWN_EVENT = "unknown_event"
SCHEMA_INVALID = "schema_invalid"
MAPPER_ERROR = "mapper_error"
INSERT_FAILED = "insert_failed"


@dataclass(frozen=True)
class Record:
    """One Kafka record, transport only: where it came from and its bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


@dataclass(frozen=True)
class Loaded:
    """A record that became a row of ``table``."""

    record: Record
    event: str
    event_id: UUID
    timestamp: datetime
    table: str
    row: Row


@dataclass(frozen=True)
class Rejected:
    """A record that cannot be loaded, and why."""

    record: Record
    reason: str
    detail: str


def transform(record: Record, registry: Registry) -> Loaded | Rejected:
    """Decode, re-validate and map one record; never raises for bad input."""
    try:
        message = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError as error:
        return Rejected(record, NOT_JSON, str(error))
    if not isinstance(message, dict):
        return Rejected(record, NOT_AN_OBJECT, f"a JSON {type(message).__name__}, not an object")
    missing = [key for key in ENVELOPE_KEYS if key not in message]
    if missing:
        return Rejected(record, MISSING_ENVELOPE, "missing " + ", ".join(missing))
    event = message["event"]
    if not isinstance(event, str) or event not in registry:
        return Rejected(record, UNKNOWN_EVENT, f"no plugin handles event {event!r}")
    envelope_error = _envelope_error(message)
    if envelope_error:
        return Rejected(record, BAD_ENVELOPE, envelope_error)
    try:
        data = registry.schema(event).load(message["data"])
    except ValidationError as error:
        return Rejected(record, SCHEMA_INVALID, orjson.dumps(error.messages).decode())
    event_type = registry[event]
    try:
        row = event_type.row({**message, "data": data})
    except Exception as error:  # a plugin's mapper is third-party code
        return Rejected(record, MAPPER_ERROR, f"{type(error).__name__}: {error}")
    return Loaded(
        record=record,
        event=event,
        event_id=UUID(message["event_id"]),
        timestamp=_timestamp(message["timestamp"]),
        table=event_type.table,
        row=row,
    )


def _envelope_error(message: dict[str, Any]) -> str | None:
    try:
        UUID(message["event_id"])
    except (TypeError, ValueError, AttributeError):
        return f"event_id {message['event_id']!r} is not a UUID"
    try:
        _timestamp(message["timestamp"])
    except (TypeError, ValueError, AttributeError):
        return f"timestamp {message['timestamp']!r} is not ISO 8601 with a zone"
    if not isinstance(message["user_id"], str) or not isinstance(message["identity"], str):
        return "user_id and identity must be strings"
    if not isinstance(message["data"], dict):
        return "data must be an object"
    version = message.get("schema_version", FIRST_SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        return f"schema_version {version!r} is not an integer from 1 to {MAX_VERSION}"
    return None


def _timestamp(raw: str) -> datetime:
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return parsed
