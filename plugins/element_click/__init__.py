"""Built-in plugin: clicks on buttons, links, posters and banners."""

from __future__ import annotations

from core import EventType, hookimpl
from core.ddl import load_ddl
from plugins.element_click.schema import ElementClickSchema

EXAMPLE = {
    "element_type": "poster",
    "element_id": "top10-carousel-card-3",
    "page_type": "main",
    "movie_id": "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b",
    "position": 2,
}


@hookimpl
def register_event_types() -> list[EventType]:
    return [
        EventType(
            name="element_click",
            schema=ElementClickSchema,
            table="element_clicks",
            ddl=load_ddl(__name__),
            example=EXAMPLE,
            description="A click on an interface element (button, link, poster, banner).",
        )
    ]
