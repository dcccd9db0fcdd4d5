"""Every hook a clickstream plugin can implement; the docstrings are the reference for authors."""

from __future__ import annotations

import pluggy

from core.registry import EventType

PROJECT_NAME = "clickstream"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_event_types() -> list[EventType]:
    """Return the event types this plugin adds to clickstream.

    Each :class:`core.EventType` is one event name clients may send
    (``{"event": name, "token": ..., "data": {...}}``) together with everything
    the pipeline needs to handle it:

    * ``schema``: a marshmallow schema class validating ``data``. Unknown
      fields are refused, so list every field a client may send.
    * ``table`` and ``ddl``: the ClickHouse table the ETL writes the event into
      and its ``CREATE TABLE IF NOT EXISTS {database}.{table}`` statement
      (the ETL fills in both placeholders). Ship it as ``table.sql`` beside
      your code, start its columns with ``{envelope_columns},`` and read it
      with :func:`core.ddl.load_ddl`, which adds the columns every table has
      (``event_id``, ``event``, ``timestamp``, ``user_id``, ``identity``).
      Event types of one plugin may share a table; they must then share its DDL.
    * ``to_row``: turns an enriched message (see ``docs/message.md``) whose
      ``data`` has been loaded by ``schema`` into a dict of column values.
      :func:`core.rows.default_row` covers the common case.
    * ``example``: a valid ``data`` object, shown in the OpenAPI document.

    A plugin contributes all of its event types or none: an invalid one stops
    start-up. Two plugins claiming one event name stop start-up too, with a
    message naming both.
    """
