"""Built-in plugin: page views, as a start and an end event paired by ``page_view_id``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core import EventType, hookimpl
from core.ddl import load_ddl
from core.rows import Row, envelope_columns
from plugins.page_view.schema import PageViewEndSchema, PageViewStartSchema

#: Both events fill one table, so each row carries every column, None where the event has none.
DATA_COLUMNS = ("page_view_id", "page_type", "video_id", "url", "referrer", "visible_ms")

START_EXAMPLE = {"page_view_id": "7f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8", "page_type": "movie"}
END_EXAMPLE = {"page_view_id": "7f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8", "page_type": "movie"}


def page_view_row(message: Mapping[str, Any]) -> Row:
    """Envelope columns plus every page-view column, whichever end ``message`` is."""
    data = message["data"]
    return {**envelope_columns(message), **{column: data.get(column) for column in DATA_COLUMNS}}


@hookimpl
def register_event_types() -> list[EventType]:
    ddl = load_ddl(__name__)
    return [
        EventType(
            name="page_view_start",
            schema=PageViewStartSchema,
            table="page_views",
            ddl=ddl,
            example=START_EXAMPLE,
            to_row=page_view_row,
            description="A page was opened; its page_view_end shares the page_view_id.",
            version=2,
        ),
        EventType(
            name="page_view_end",
            schema=PageViewEndSchema,
            table="page_views",
            ddl=ddl,
            example=END_EXAMPLE,
            to_row=page_view_row,
            description="A page was left or closed; pairs with page_view_start by page_view_id.",
            version=2,
        ),
    ]
