"""The ``data`` of a ``search_filter`` event."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from core.fields import StrictInteger, Text

MAX_QUERY = 512
MAX_FILTERS = 20
MAX_RESULTS = 10_000_000


class SearchFilterSchema(Schema):
    query = Text(max_length=MAX_QUERY, allow_empty=True, load_default="")
    filters = fields.Dict(
        keys=Text(max_length=64),
        values=Text(max_length=256),
        validate=validate.Length(max=MAX_FILTERS),
        load_default=dict,
    )
    results_count = StrictInteger(
        validate=validate.Range(min=0, max=MAX_RESULTS), load_default=None
    )

    @validates_schema
    def _something_searched(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data["query"].strip() and not data["filters"]:
            raise ValidationError("Give a query or at least one filter.", field_name="query")
