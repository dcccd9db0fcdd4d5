"""Built-in plugin: a catalogue search, by text query, filters, or both."""

from __future__ import annotations

from core import EventType, hookimpl, load_ddl
from plugins.search_filter.schema import SearchFilterSchema

EXAMPLE = {"search_query": "Брат 2", "filters": "genre=драма"}


@hookimpl
def register_event_types() -> list[EventType]:
    return [
        EventType(
            name="search_filter",
            schema=SearchFilterSchema,
            table="search_filters",
            ddl=load_ddl(__name__),
            example=EXAMPLE,
            description="A catalogue search by text query and/or filters.",
            version=2,
        )
    ]
