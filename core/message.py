"""The message clickstream publishes to Kafka for each accepted event (see docs/message.md).

Its one owner: what a client sends (the envelope schema), how the API builds and encodes
the message, and the columns of it that every event table starts with.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import orjson
from marshmallow import Schema, fields, validate

from core.host.fields import Text, Timestamp

Mode = Literal["anonymous", "verified", "degraded"]


@dataclass(frozen=True)
class Identity:
    """Who an event belongs to (``user_id``) and how that was established (``identity``)."""

    user_id: str
    mode: Mode


ANONYMOUS = Identity("anonymous", "anonymous")

#: Longest token accepted; longer ones are refused before any verification. Well below the
#: 8 KB a header line may take at common servers and proxies (nginx, gunicorn, Apache), which
#: answer a longer Authorization header with 400 or 431; real JWTs take well under 2 KB.
MAX_TOKEN_LENGTH = 4096
#: What a bearer token may hold: printable ASCII without spaces. Anything else cannot travel
#: in the auth service's Authorization header, so it is refused here, not there.
TOKEN_PATTERN = "^[!-~]+$"
#: Longest ``anonymous_id`` and ``session_id``: room for any UUID or app-made id.
MAX_CLIENT_ID = 128
#: How far a client's clock may be from the server's before its ``client_time`` is not stored.
DEFAULT_MAX_CLOCK_SKEW = timedelta(hours=24)


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
    anonymous_id = Text(
        load_default=None,
        allow_none=True,
        max_length=MAX_CLIENT_ID,
        metadata={
            "description": "Optional. A stable id of the browser or app install, kept by the "
            "client (the tracker keeps one in localStorage)."
        },
    )
    session_id = Text(
        load_default=None,
        allow_none=True,
        max_length=MAX_CLIENT_ID,
        metadata={
            "description": "Optional. The id of the visit, which the client renews after "
            "30 minutes without activity."
        },
    )
    sent_at = Timestamp(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Optional. The client's clock when it sent the event (ISO 8601 with "
            "a zone): the warehouse's client_time is corrected by it."
        },
    )


@dataclass(frozen=True)
class Client:
    """What the API read of the sender from its request (its User-Agent, classified)."""

    device: str = ""
    browser: str = ""
    os: str = ""
    is_bot: bool = False


#: A request without a User-Agent: nothing known, not tagged as a bot.
UNKNOWN_CLIENT = Client()


def new_event_id() -> str:
    """A random (version 4) UUID as text, what ``str(uuid.uuid4())`` gives, for half its cost:
    the bytes are formatted directly, without a UUID object in between."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    digits = raw.hex()
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def format_timestamp(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a ``Z``: ``2026-11-28T10:00:00.123Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def client_time(
    timestamp: datetime, sent_at: datetime | None, max_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
) -> datetime | None:
    """The client's moment of sending, kept only when its clock is plausible.

    ``timestamp - (received - sent_at)``: the server's time less the client's skew (its
    clock's offset plus the time the event took to arrive, retries included). As the
    server's ``timestamp`` is the receive time, this is ``sent_at`` itself; None without
    ``sent_at``, or when the skew is beyond ``max_skew`` either way: a clock that far off
    (a device set to another day) says nothing about when the event happened.
    """
    if sent_at is None:
        return None
    skew = timestamp - sent_at
    if abs(skew) > max_skew:
        return None
    return timestamp - skew


def build_message(
    event: str,
    data: Mapping[str, Any],
    identity: Identity,
    received_at: datetime,
    schema_version: int,
    *,
    envelope: Mapping[str, Any] | None = None,
    client: Client = UNKNOWN_CLIENT,
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
) -> dict[str, Any]:
    """The enriched message: the token is gone; identity, server time and version are added.

    ``schema_version`` is the ``version`` of the event type whose schema ``data`` passed.
    ``envelope`` is the loaded envelope, whose ``anonymous_id``, ``session_id`` and
    ``sent_at`` travel on (``client_time`` is derived from ``sent_at``, see
    :func:`client_time`); ``client`` is what the request's User-Agent said.
    """
    envelope = envelope or {}
    sent_at = envelope.get("sent_at")
    corrected = client_time(received_at, sent_at, max_clock_skew)
    return {
        "event_id": new_event_id(),
        "event": event,
        "timestamp": format_timestamp(received_at),
        "user_id": identity.user_id,
        "identity": identity.mode,
        "schema_version": schema_version,
        "anonymous_id": envelope.get("anonymous_id"),
        "session_id": envelope.get("session_id"),
        "sent_at": None if sent_at is None else format_timestamp(sent_at),
        "client_time": None if corrected is None else format_timestamp(corrected),
        "device": client.device,
        "browser": client.browser,
        "os": client.os,
        "is_bot": client.is_bot,
        "data": dict(data),
    }


def encode(message: Mapping[str, Any]) -> bytes:
    """UTF-8 JSON bytes of a message."""
    return orjson.dumps(message)


def decode(raw: bytes) -> dict[str, Any]:
    """A message from its bytes; raises ``orjson.JSONDecodeError`` or ``TypeError`` if not one."""
    message = orjson.loads(raw)
    if not isinstance(message, dict):
        raise TypeError(f"a JSON {type(message).__name__}, not an object")
    return message


def missing_keys(message: Mapping[str, Any]) -> list[str]:
    """The keys every message has that ``message`` lacks."""
    if _MESSAGE_KEY_SET.issubset(message):
        return []
    return [key for key in MESSAGE_KEYS if key not in message]


def envelope_error(message: Mapping[str, Any]) -> str | None:
    """What is wrong with the envelope of ``message`` (which has every key), or None."""
    if not isinstance(message["event"], str):
        return f"event {message['event']!r} is not a string"
    if not _is_uuid(message["event_id"]):
        return f"event_id {message['event_id']!r} is not a UUID"
    try:
        parse_timestamp(message["timestamp"])
    except (TypeError, ValueError, AttributeError):
        return f"timestamp {message['timestamp']!r} is not ISO 8601 with a zone"
    if not isinstance(message["user_id"], str) or not isinstance(message["identity"], str):
        return "user_id and identity must be strings"
    if not isinstance(message["data"], dict):
        return "data must be an object"
    version = message.get("schema_version", FIRST_SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        return f"schema_version {version!r} is not an integer from 1 to {MAX_VERSION}"
    for key in ("anonymous_id", "session_id", "device", "browser", "os"):
        if not isinstance(message.get(key), _TEXT_OR_NONE):
            return f"{key} {message[key]!r} is not a string"
    for key in ("sent_at", "client_time"):
        if message.get(key) is not None:
            try:
                parse_timestamp(message[key])
            except (TypeError, ValueError, AttributeError):
                return f"{key} {message[key]!r} is not ISO 8601 with a zone"
    if not isinstance(message.get("is_bot", False), bool):
        return f"is_bot {message['is_bot']!r} is not a boolean"
    return None


_TEXT_OR_NONE = (str, type(None))
#: A UUID as ``str(uuid.UUID)`` writes it (either case): valid without parsing it.
_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def _is_uuid(value: object) -> bool:
    """Whether ``uuid.UUID`` reads ``value``; the usual spelling is recognised without it."""
    if isinstance(value, str) and _UUID_TEXT.fullmatch(value):
        return True
    try:
        UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


#: Keys every published message has. ``schema_version`` may be missing (messages published
#: before it existed read as version 1); other keys (``request_id``) are extra.
MESSAGE_KEYS = ("event_id", "event", "timestamp", "user_id", "identity", "data")
_MESSAGE_KEY_SET = frozenset(MESSAGE_KEYS)
#: The ``schema_version`` column is a UInt16.
MAX_VERSION = 65535
#: The columns every event table starts with, in this order, filled by :func:`envelope_columns`.
ENVELOPE_COLUMNS = (
    "event_id",
    "event",
    "timestamp",
    "user_id",
    "identity",
    "schema_version",
    "anonymous_id",
    "session_id",
    "sent_at",
    "client_time",
    "device",
    "browser",
    "os",
    "is_bot",
)
#: The ``schema_version`` of messages published before the envelope carried one.
FIRST_SCHEMA_VERSION = 1
#: Their ClickHouse definitions: the first columns of a generated table (core.host.ddl), and
#: what ``{envelope_columns}`` in a plugin's table.sql becomes.
ENVELOPE_COLUMNS_DDL = """\
event_id UUID COMMENT 'unique per event: re-deliveries share it and collapse',
    event LowCardinality(String) COMMENT 'the event name',
    timestamp DateTime64(3, 'UTC') COMMENT 'server receive time',
    user_id String COMMENT 'anonymous when the client sent no token',
    identity LowCardinality(String) COMMENT 'anonymous, verified or degraded',
    schema_version UInt16 DEFAULT 1 COMMENT 'version of the event type the data was validated by',
    anonymous_id Nullable(String) DEFAULT NULL COMMENT 'browser or app install, client-kept',
    session_id Nullable(String) DEFAULT NULL COMMENT 'the visit, as the client keeps it',
    sent_at Nullable(DateTime64(3, 'UTC')) DEFAULT NULL COMMENT 'the client clock at sending',
    client_time Nullable(DateTime64(3, 'UTC')) DEFAULT NULL COMMENT 'sent_at, skew in bounds',
    device LowCardinality(String) DEFAULT '' COMMENT 'device family from the User-Agent',
    browser LowCardinality(String) DEFAULT '' COMMENT 'browser family from the User-Agent',
    os LowCardinality(String) DEFAULT '' COMMENT 'operating system family from the User-Agent',
    is_bot Bool DEFAULT false COMMENT 'a crawler or script by its User-Agent: kept, tagged'"""


#: How the engine reads each envelope column straight from a message's JSON (core.host.json_load):
#: the type of its key in the input, and the expression of its column, as
#: :func:`envelope_columns` fills it.
ENVELOPE_INPUT = (
    ("event_id", "UUID", "event_id"),
    ("event", "String", "event"),
    ("timestamp", "DateTime64(3, 'UTC')", "timestamp"),
    ("user_id", "String", "user_id"),
    ("identity", "String", "identity"),
    ("schema_version", "Nullable(UInt16)", f"ifNull(schema_version, {FIRST_SCHEMA_VERSION})"),
    ("anonymous_id", "Nullable(String)", "anonymous_id"),
    ("session_id", "Nullable(String)", "session_id"),
    ("sent_at", "Nullable(DateTime64(3, 'UTC'))", "sent_at"),
    ("client_time", "Nullable(DateTime64(3, 'UTC'))", "client_time"),
    ("device", "Nullable(String)", "ifNull(device, '')"),
    ("browser", "Nullable(String)", "ifNull(browser, '')"),
    ("os", "Nullable(String)", "ifNull(os, '')"),
    ("is_bot", "Nullable(Bool)", "ifNull(is_bot, false)"),
)
#: A UUID as ``str(uuid.UUID)`` writes it, the only spelling the engine reads as Python does.
CANONICAL_UUID_LENGTH = 36


def as_published(message: Mapping[str, Any]) -> bool:
    """Whether ``message`` (whose envelope passed :func:`envelope_error`) is spelled as the
    API writes it: its event id and times in the one form the engine and Python read alike."""
    if len(message["event_id"]) != CANONICAL_UUID_LENGTH:
        return False
    return all(
        _canonical_moment(message.get(key)) for key in ("timestamp", "sent_at", "client_time")
    )


def _canonical_moment(value: str | None) -> bool:
    """None, or a valid moment (envelope_error parsed it) as :func:`format_timestamp` writes
    it: ``YYYY-MM-DDTHH:MM:SS.mmmZ``, told by its length and separators alone."""
    return value is None or (
        len(value) == 24
        and value[10] == "T"
        and value[19] == "."
        and value[23] == "Z"
        and value[4] == value[7] == "-"
        and value[13] == value[16] == ":"
    )


def parse_timestamp(raw: str) -> datetime:
    """A message's ``timestamp``; raises ``ValueError`` unless it is ISO 8601 with a zone."""
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return parsed


def envelope_columns(message: Mapping[str, Any]) -> dict[str, Any]:
    """The columns every event table has, from a decoded message, typed for clickhouse-connect."""
    return {
        "event_id": UUID(message["event_id"]),
        "event": message["event"],
        "timestamp": parse_timestamp(message["timestamp"]),
        "user_id": message["user_id"],
        "identity": message["identity"],
        "schema_version": message.get("schema_version", FIRST_SCHEMA_VERSION),
        "anonymous_id": message.get("anonymous_id"),
        "session_id": message.get("session_id"),
        "sent_at": _optional_timestamp(message.get("sent_at")),
        "client_time": _optional_timestamp(message.get("client_time")),
        "device": message.get("device") or "",
        "browser": message.get("browser") or "",
        "os": message.get("os") or "",
        "is_bot": bool(message.get("is_bot", False)),
    }


def _optional_timestamp(raw: str | None) -> datetime | None:
    return None if raw is None else parse_timestamp(raw)
