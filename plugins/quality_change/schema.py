"""The ``data`` of a ``quality_change`` event."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from core.fields import StrictInteger

#: Video height in pixels; 8640 is 16K, beyond anything the player offers.
MAX_QUALITY = 8640
#: One day in seconds: longer than any video in the catalogue.
MAX_POSITION_S = 24 * 60 * 60
REASONS = ("auto", "manual")


def _quality(**kwargs: Any) -> StrictInteger:
    return StrictInteger(validate=validate.Range(min=1, max=MAX_QUALITY), **kwargs)


class QualityChangeSchema(Schema):
    movie_id = fields.UUID(required=True)
    old_quality = _quality(required=True)
    new_quality = _quality(required=True)
    reason = fields.String(validate=validate.OneOf(REASONS), load_default=None)
    position_s = StrictInteger(
        validate=validate.Range(min=0, max=MAX_POSITION_S), load_default=None
    )

    @validates_schema
    def _changed(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["old_quality"] == data["new_quality"]:
            raise ValidationError("Must differ from old_quality.", field_name="new_quality")
