"""Turning an enriched, schema-loaded message into a warehouse row."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

Row = dict[str, Any]

#: Columns every event table starts with, filled from the message envelope.
ENVELOPE_COLUMNS = ("event_id", "event", "timestamp", "user_id", "identity", "schema_version")

#: The ``schema_version`` of messages published before the envelope carried one.
FIRST_SCHEMA_VERSION = 1


def envelope_columns(message: Mapping[str, Any]) -> Row:
    """The columns every event table has, typed for clickhouse-connect."""
    return {
        "event_id": UUID(message["event_id"]),
        "event": message["event"],
        "timestamp": datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00")),
        "user_id": message["user_id"],
        "identity": message["identity"],
        "schema_version": message.get("schema_version", FIRST_SCHEMA_VERSION),
    }


def default_row(message: Mapping[str, Any]) -> Row:
    """Envelope columns plus one column per ``data`` field, under the field's name.

    Fields the client left out become ``None``; declare such columns
    ``Nullable`` or give them a ``DEFAULT`` and drop ``None`` in your own mapper.
    """
    return {**envelope_columns(message), **message["data"]}
