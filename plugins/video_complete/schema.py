"""The ``data`` of a ``video_complete`` event."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from core.fields import StrictBoolean, StrictInteger

#: One day in seconds: longer than any video in the catalogue.
MAX_SECONDS = 24 * 60 * 60


class VideoCompleteSchema(Schema):
    movie_id = fields.UUID(required=True)
    duration_total = StrictBoolean(required=True)
    watched_s = StrictInteger(validate=validate.Range(min=0, max=MAX_SECONDS), load_default=None)
    duration_s = StrictInteger(validate=validate.Range(min=1, max=MAX_SECONDS), load_default=None)
