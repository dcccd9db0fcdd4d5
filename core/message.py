"""The message clickstream publishes to Kafka for each accepted event (see docs/message.md)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from marshmallow import Schema, fields, validate

from core.host.fields import Text
from core.ingest.identity import Identity

#: Longest token accepted; longer ones are refused before any verification.
MAX_TOKEN_LENGTH = 8192
#: What a bearer token may hold: printable ASCII without spaces. Anything else cannot travel
#: in the auth service's Authorization header, so it is refused here, not there.
TOKEN_PATTERN = "^[!-~]+$"


class EnvelopeSchema(Schema):
    """What every client POSTs: the event name, an optional token and the event's data."""

    event = Text(required=True, max_length=64, metadata={"description": "Event type name."})
    token = fields.String(
        load_default=None,
        allow_none=True,
        validate=[
            validate.Length(min=1, max=MAX_TOKEN_LENGTH),
            validate.Regexp(TOKEN_PATTERN, error="A token is printable ASCII without spaces."),
        ],
        metadata={"description": "The user's JWT, or null for an anonymous user."},
    )
    data = fields.Dict(
        keys=fields.String(), required=True, metadata={"description": "The event's fields."}
    )


def format_timestamp(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a ``Z``: ``2026-11-28T10:00:00.123Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_message(
    event: str,
    data: Mapping[str, Any],
    identity: Identity,
    received_at: datetime,
    schema_version: int,
) -> dict[str, Any]:
    """The enriched message: the token is gone; identity, server time and version are added.

    ``schema_version`` is the ``version`` of the event type whose schema ``data`` passed.
    """
    return {
        "event_id": str(uuid.uuid4()),
        "event": event,
        "timestamp": format_timestamp(received_at),
        "user_id": identity.user_id,
        "identity": identity.mode,
        "schema_version": schema_version,
        "data": dict(data),
    }


def encode(message: Mapping[str, Any]) -> bytes:
    """UTF-8 JSON bytes of a message."""
    return orjson.dumps(message)


def decode(raw: bytes) -> dict[str, Any]:
    """A message from its bytes; raises ``orjson.JSONDecodeError`` or ``TypeError`` if not one."""
    message = orjson.loads(raw)
    if not isinstance(message, dict):
        raise TypeError("a message is a JSON object")
    return message
