"""Built-in plugin: the player switched video quality, by itself or at the viewer's request."""

from __future__ import annotations

from core import EventType, hookimpl
from core.ddl import load_ddl
from plugins.quality_change.schema import QualityChangeSchema

EXAMPLE = {
    "movie_id": "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b",
    "old_quality": 1080,
    "new_quality": 720,
    "reason": "auto",
    "position_s": 1312,
}


@hookimpl
def register_event_types() -> list[EventType]:
    return [
        EventType(
            name="quality_change",
            schema=QualityChangeSchema,
            table="quality_changes",
            ddl=load_ddl(__name__),
            example=EXAMPLE,
            description="The player switched video quality (in pixels of height) while playing.",
        )
    ]
