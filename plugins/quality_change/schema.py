"""The ``data`` of a ``quality_change`` event: the specification's fields, then optional ones."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from core import StrictInteger, Text

#: The player's quality value (video height in pixels: 480, 720, 1080, ...) fits a UInt16.
MAX_QUALITY = 65535
#: One day in seconds: longer than any video in the catalogue.
MAX_POSITION_S = 24 * 60 * 60
REASONS = ("auto", "manual")


def _quality() -> StrictInteger:
    return StrictInteger(validate=validate.Range(min=0, max=MAX_QUALITY), required=True)


class QualityChangeSchema(Schema):
    # The specification's fields. An unchanged quality (old == new) is data, not an error.
    video_id = Text(max_length=128, required=True)
    old_quality = _quality()
    new_quality = _quality()
    # Optional details a player may add.
    reason = fields.String(validate=validate.OneOf(REASONS), load_default=None)
    position_s = StrictInteger(
        validate=validate.Range(min=0, max=MAX_POSITION_S), load_default=None
    )
