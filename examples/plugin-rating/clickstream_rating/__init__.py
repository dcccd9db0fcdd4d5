"""A clickstream plugin: a viewer rated a movie (``rating_submitted``)."""

from __future__ import annotations

from core import EventType, hookimpl

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
            example=EXAMPLE,
            description="A viewer rated a movie from 1 to 10, optionally with a review.",
            # The generated table's sort key: ratings are read per video, over time.
            order_by=("video_id", "timestamp"),
        )
    ]
