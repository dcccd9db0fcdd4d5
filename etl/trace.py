"""One log line per event a pass loaded (DEBUG) or dead-lettered (INFO), with its request id.

The API copies its request id into each message (``request_id``, docs/message.md), so
these lines join the API's line for the request that sent the event. Loaded events are
logged at DEBUG only: at INFO the ETL would write a line for every event it loads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import orjson

from core.message import decode
from etl.consume import Record
from etl.transform import Checked, Loaded, Rejected

log = logging.getLogger("etl.events")


def request_id_of(record: Record) -> str | None:
    """The ``request_id`` of a record's message, if it is a message and has one."""
    try:
        message = decode(record.value or b"")
    except (orjson.JSONDecodeError, TypeError):
        return None
    request_id = message.get("request_id")
    return request_id if isinstance(request_id, str) else None


def log_events(
    pass_id: str, loaded: Iterable[Loaded | Checked], rejected: Iterable[Rejected]
) -> None:
    """Log each event of a pass; decoding the request id again costs only when logged."""
    if log.isEnabledFor(logging.DEBUG):
        for outcome in loaded:
            log.debug(
                "etl.event_loaded",
                extra={
                    "event_id": str(outcome.event_id),
                    "event": outcome.event,
                    "table": outcome.table,
                    **_where(pass_id, outcome.record),
                },
            )
    if log.isEnabledFor(logging.INFO):
        for outcome in rejected:
            log.info(
                "etl.event_dead_lettered",
                extra={"reason": outcome.reason, **_where(pass_id, outcome.record)},
            )


def _where(pass_id: str, record: Record) -> dict[str, object]:
    return {
        "request_id": request_id_of(record),
        "partition": record.partition,
        "offset": record.offset,
        "pass_id": pass_id,
    }
