"""A clickstream plugin: a viewer rated a movie (``rating_submitted``)."""

from __future__ import annotations

from core import EventType, hookimpl, load_ddl

from clickstream_rating.schema import RatingSchema

EXAMPLE = {
    "video_id": "tt0079944",
    "score": 9,
    "review": "Пересматривал трижды: «Сталкер» не отпускает.",
}


@hookimpl
def register_event_types() -> list[EventType]:
    return [
        EventType(
            name="rating_submitted",
            schema=RatingSchema,
            table="ratings",
            ddl=load_ddl(__name__),
            example=EXAMPLE,
            description="A viewer rated a movie from 1 to 10, optionally with a review.",
        )
    ]
