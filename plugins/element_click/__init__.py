"""Built-in plugin: clicks on interface elements (a movie card, a category, a trailer, ...)."""

from __future__ import annotations

from importlib.resources import files

from core import EventType, TrackerScript, hookimpl
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
            # Read by day and by user; not by timestamp itself, which in the key would stop
            # ClickHouse pruning a time range by the day (docs/warehouse.md, Sort keys).
            order_by=("toDate(timestamp)", "user_id"),
        )
    ]


@hookimpl
def register_tracker_scripts() -> list[TrackerScript]:
    return [
        TrackerScript(
            name="element_clicks",
            source=files(__name__).joinpath("tracker.js").read_text(encoding="utf-8"),
            description="element_click from elements marked with data-clickstream-element",
        )
    ]
