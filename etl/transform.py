"""Kafka record -> validated message -> the plugin's row, or a dead letter saying why not
(or, for an event of no installed plugin and by the operator's choice, skipped).

A message of an event type whose table is generated from its schema, published by the
API with the schema's current version, is only checked here (its envelope): the engine
reads its row from the JSON itself (:class:`Checked`, see etl.sink).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import orjson
from marshmallow import ValidationError

from core import message as messages
from core.host.registry import MapperError, Registry, Row
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
class Checked:
    """A record whose envelope passed, left for the engine to map to a row of ``table``
    from its JSON (the API validated its data with the schema of its version).

    Its decoded ``message`` is kept, and read only for what a pass asks of few records
    (identity links, forgotten persons).
    """

    record: Record
    event: str
    table: str
    message: dict

    @property
    def event_id(self) -> UUID:
        return UUID(self.message["event_id"])

    @property
    def timestamp(self) -> datetime:
        return messages.parse_timestamp(self.message["timestamp"])

    @property
    def user_id(self) -> str:
        return self.message["user_id"]

    @property
    def anonymous_id(self) -> str | None:
        return self.message.get("anonymous_id")

    @property
    def link(self) -> tuple[str, str] | None:
        return identity_link(self.message)


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


Outcome = Loaded | Checked | Rejected | Skipped


def transform(
    record: Record, registry: Registry, *, skip_unknown: bool = False, engine: bool = True
) -> Outcome:
    """Decode, check and map one record; never raises for bad input.

    A record whose envelope is sound but whose event ``registry`` does not know is
    :class:`Rejected` (``unknown_event``), or :class:`Skipped` with ``skip_unknown``.
    With ``engine``, a message the engine can map (:func:`by_engine`) is :class:`Checked`
    only; otherwise (and without ``engine``) its data is validated again and mapped here.
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
    event_type = registry[event]
    if engine and by_engine(message, registry):
        return Checked(record, event, event_type.table, message)
    try:
        row = event_type.load_row(message, registry.schema(event))
    except ValidationError as error:
        return Rejected(record, SCHEMA_INVALID, orjson.dumps(error.messages).decode())
    except MapperError as error:
        return Rejected(record, MAPPER_ERROR, str(error))
    return Loaded(
        record=record,
        event=event,
        event_id=UUID(message["event_id"]),
        timestamp=messages.parse_timestamp(message["timestamp"]),
        table=event_type.table,
        row=row,
        link=identity_link(message),
    )


def by_engine(message: dict, registry: Registry) -> bool:
    """Whether the engine maps ``message`` (of a known event, its envelope sound) to its row:
    its event type's table is generated and its mapper the default one, and the API wrote
    it with the schema's current version, as it writes every message."""
    event = message["event"]
    return (
        registry.json_insert(event) is not None
        and message.get("schema_version") == registry[event].version
        and messages.as_published(message)
    )


def identity_link(message: dict) -> tuple[str, str] | None:
    """``(anonymous_id, user_id)`` of a message from a verified user carrying an
    anonymous_id: that browser or install was that user's, before and after signing in."""
    anonymous_id = message.get("anonymous_id")
    if anonymous_id is None or message["identity"] != VERIFIED:
        return None
    return anonymous_id, message["user_id"]
