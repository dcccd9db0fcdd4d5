"""Built-in plugin: playback of a video reached its end."""

from __future__ import annotations

from core import EventType, hookimpl
from core.ddl import load_ddl
from plugins.video_complete.schema import VideoCompleteSchema

EXAMPLE = {
    "movie_id": "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b",
    "duration_total": True,
    "watched_s": 6480,
    "duration_s": 6540,
}


@hookimpl
def register_event_types() -> list[EventType]:
    return [
        EventType(
            name="video_complete",
            schema=VideoCompleteSchema,
            table="video_completes",
            ddl=load_ddl(__name__),
            example=EXAMPLE,
            description="Playback reached the end; duration_total says if all of it was watched.",
        )
    ]
