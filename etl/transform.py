"""Kafka record -> validated message -> the plugin's row, or a dead letter saying why not
(or, for an event of no installed plugin and by the operator's choice, skipped)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import orjson
from marshmallow import ValidationError

from core import message as messages
from core.host.registry import Registry, Row
from etl.consume import Record

#: Why a message went to the dead-letter table (the ``reason`` column).
NOT_JSON = "not_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_ENVELOPE = "missing_envelope"
BAD_ENVELOPE = "bad_envelope"
UNKNOWN_EVENT = "unknown_event"
SCHEMA_INVALID = "schema_invalid"
MAPPER_ERROR = "mapper_error"
INSERT_FAILED = "insert_failed"

#: The identity whose user_id the auth service vouched for: the only one stitched.
VERIFIED = "verified"


@dataclass(frozen=True)
class Loaded:
    """A record that became a row of ``table``."""

    record: Record
    event: str
    event_id: UUID
    timestamp: datetime
    table: str
    row: Row
    #: ``(anonymous_id, user_id)`` when a verified user sent it with an anonymous_id: the
    #: identity link the pass records (``identity_links``).
    link: tuple[str, str] | None = None


@dataclass(frozen=True)
class Rejected:
    """A record that cannot be loaded, and why."""

    record: Record
    reason: str
    detail: str


@dataclass(frozen=True)
class Skipped:
    """A well-formed record of an event type no installed plugin handles, passed over because
    ``CLICKSTREAM_ETL_UNKNOWN_EVENTS`` is ``skip``; the pass counts it by ``event``."""

    record: Record
    event: str


Outcome = Loaded | Rejected | Skipped


def transform(record: Record, registry: Registry, *, skip_unknown: bool = False) -> Outcome:
    """Decode, re-validate and map one record; never raises for bad input.

    A record whose envelope is sound but whose event ``registry`` does not know is
    :class:`Rejected` (``unknown_event``), or :class:`Skipped` with ``skip_unknown``.
    """
    try:
        message = messages.decode(record.value or b"")
    except orjson.JSONDecodeError as error:
        return Rejected(record, NOT_JSON, str(error))
    except TypeError as error:
        return Rejected(record, NOT_AN_OBJECT, str(error))
    missing = messages.missing_keys(message)
    if missing:
        return Rejected(record, MISSING_ENVELOPE, "missing " + ", ".join(missing))
    envelope_error = messages.envelope_error(message)
    if envelope_error:
        return Rejected(record, BAD_ENVELOPE, envelope_error)
    event = message["event"]
    if event not in registry:
        if skip_unknown:
            return Skipped(record, event)
        return Rejected(
            record,
            UNKNOWN_EVENT,
            f"no installed plugin handles event {event!r}: its plugin is not installed where "
            "the ETL runs (removed, or not yet installed); once it is, "
            "`clickstream deadletters requeue --reason unknown_event` loads it",
        )
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
        timestamp=messages.parse_timestamp(message["timestamp"]),
        table=event_type.table,
        row=row,
        link=identity_link(message),
    )


def identity_link(message: dict) -> tuple[str, str] | None:
    """``(anonymous_id, user_id)`` of a message from a verified user carrying an
    anonymous_id: that browser or install was that user's, before and after signing in."""
    anonymous_id = message.get("anonymous_id")
    if anonymous_id is None or message["identity"] != VERIFIED:
        return None
    return anonymous_id, message["user_id"]
