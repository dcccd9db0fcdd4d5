"""Built-in plugin: a catalogue search, by text query, filters, or both."""

from __future__ import annotations

from core import EventType, hookimpl
from plugins.search_filter.schema import SearchFilterSchema

EXAMPLE = {"search_query": "Брат 2", "filters": "genre=драма"}


@hookimpl
def register_event_types() -> list[EventType]:
    return [
        EventType(
            name="search_filter",
            schema=SearchFilterSchema,
            table="search_filters",
            example=EXAMPLE,
            description="A catalogue search by text query and/or filters.",
            version=2,
            # Read by day and by user; search_query, free text, stays out of the key.
            order_by=("toDate(timestamp)", "user_id"),
        )
    ]
