"""Built-in plugin: clicks on interface elements (a movie card, a category, a trailer, ...)."""

from __future__ import annotations

from core import EventType, hookimpl
from plugins.element_click.schema import ElementClickSchema

EXAMPLE = {"element_type": "trailer", "page_type": "movie"}


@hookimpl
def register_event_types() -> list[EventType]:
    return [
        EventType(
            name="element_click",
            schema=ElementClickSchema,
            table="element_clicks",
            example=EXAMPLE,
            description="A click on an interface element: a movie card, a category, a trailer, ...",
            version=2,
            order_by=("page_type", "element_type", "toDate(timestamp)"),
        )
    ]
