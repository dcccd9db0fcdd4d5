"""Built-in plugin: the player switched video quality, by itself or at the viewer's request."""

from __future__ import annotations

from core import EventType, hookimpl
from plugins.quality_change.schema import QualityChangeSchema

EXAMPLE = {"video_id": "tt0111161", "old_quality": 720, "new_quality": 1080}


@hookimpl
def register_event_types() -> list[EventType]:
    return [
        EventType(
            name="quality_change",
            schema=QualityChangeSchema,
            table="quality_changes",
            example=EXAMPLE,
            description="The player switched video quality (e.g. video height in pixels).",
            version=2,
            # Read by day and by user; a user's changes of one video are neighbours.
            order_by=("toDate(timestamp)", "user_id", "video_id"),
        )
    ]
