"""The ``data`` of a ``video_complete`` event: the specification's fields, then optional ones."""

from __future__ import annotations

from marshmallow import Schema, validate

from core import StrictBoolean, StrictInteger, Text

#: One day in seconds: longer than any video in the catalogue.
MAX_SECONDS = 24 * 60 * 60


class VideoCompleteSchema(Schema):
    # The specification's fields.
    video_id = Text(max_length=128, required=True)
    duration_total = StrictBoolean(required=True)
    # Optional details a player may add.
    watched_s = StrictInteger(validate=validate.Range(min=0, max=MAX_SECONDS), load_default=None)
    duration_s = StrictInteger(validate=validate.Range(min=1, max=MAX_SECONDS), load_default=None)
