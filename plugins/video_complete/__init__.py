"""Built-in plugin: playback of a video reached its end."""

from __future__ import annotations

from core import EventType, hookimpl
from plugins.video_complete.schema import VideoCompleteSchema

EXAMPLE = {"video_id": "tt0111161", "duration_total": True}


@hookimpl
def register_event_types() -> list[EventType]:
    return [
        EventType(
            name="video_complete",
            schema=VideoCompleteSchema,
            table="video_completes",
            example=EXAMPLE,
            description="Playback reached the end; duration_total says if all of it was watched.",
            version=2,
            # Read by day and by user; a user's completions of one video are neighbours.
            order_by=("toDate(timestamp)", "user_id", "video_id"),
        )
    ]
