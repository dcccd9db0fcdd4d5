"""The ``data`` of a ``video_complete`` event: the specification's fields, then optional ones."""

from __future__ import annotations

from marshmallow import Schema

from core import Boolean, Integer, Text

#: One day in seconds: longer than any video in the catalogue.
MAX_SECONDS = 24 * 60 * 60


class VideoCompleteSchema(Schema):
    # The specification's fields.
    video_id = Text(
        max_length=128, required=True, metadata={"description": "The catalogue id of the video."}
    )
    duration_total = Boolean(
        required=True, metadata={"description": "true: the viewer watched the whole video."}
    )
    # Optional details a player may add.
    watched_s = Integer(
        min=0,
        max=MAX_SECONDS,
        load_default=None,
        metadata={"description": "Seconds actually played."},
    )
    duration_s = Integer(
        min=1,
        max=MAX_SECONDS,
        load_default=None,
        metadata={"description": "The length of the video in seconds."},
    )
