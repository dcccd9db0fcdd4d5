"""The ``data`` of a ``quality_change`` event: the specification's fields, then optional ones."""

from __future__ import annotations

from marshmallow import Schema

from core import Choice, Integer, Text

#: The player's quality value (video height in pixels: 480, 720, 1080, ...) fits a UInt16.
MAX_QUALITY = 65535
#: One day in seconds: longer than any video in the catalogue.
MAX_POSITION_S = 24 * 60 * 60
REASONS = ("auto", "manual")


def _quality(description: str) -> Integer:
    return Integer(min=0, max=MAX_QUALITY, required=True, metadata={"description": description})


class QualityChangeSchema(Schema):
    # The specification's fields. An unchanged quality (old == new) is data, not an error.
    video_id = Text(
        max_length=128, required=True, metadata={"description": "The catalogue id of the video."}
    )
    old_quality = _quality("The quality before the change, e.g. video height in pixels: 720.")
    new_quality = _quality("The quality after the change.")
    # Optional details a player may add.
    reason = Choice(
        REASONS,
        load_default=None,
        metadata={"description": "auto (adaptive streaming) or manual (the viewer chose)."},
    )
    position_s = Integer(
        min=0,
        max=MAX_POSITION_S,
        load_default=None,
        metadata={"description": "Seconds into the video when the quality changed."},
    )
