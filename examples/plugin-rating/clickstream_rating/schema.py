"""The ``data`` of a ``rating_submitted`` event."""

from __future__ import annotations

from core import Integer, Text
from marshmallow import Schema

#: Scores run from 1 to 10, as on the movie page.
MIN_SCORE, MAX_SCORE = 1, 10
#: Longest catalogue id, as the built-in event types accept it.
MAX_VIDEO_ID = 128
#: Longest review, in characters (not bytes: Cyrillic takes two bytes each in UTF-8).
MAX_REVIEW = 2000


class RatingSchema(Schema):
    video_id = Text(
        max_length=MAX_VIDEO_ID,
        required=True,
        metadata={"description": "The rated video: the catalogue's id, such as tt0111161."},
    )
    score = Integer(
        min=MIN_SCORE,
        max=MAX_SCORE,
        required=True,
        metadata={"description": f"From {MIN_SCORE} (worst) to {MAX_SCORE} (best)."},
    )
    review = Text(
        max_length=MAX_REVIEW,
        load_default=None,
        metadata={"description": "What the viewer wrote, in any language; absent if nothing."},
    )
