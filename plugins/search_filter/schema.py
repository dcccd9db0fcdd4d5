"""The ``data`` of a ``search_filter`` event: the specification's two fields, then optional ones."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, validate, validates_schema

from core import StrictInteger, Text

MAX_QUERY = 512
MAX_FILTERS = 2048
MAX_RESULTS = 10_000_000


class SearchFilterSchema(Schema):
    # The specification's fields. A search by filters alone has an empty search_query,
    # one by text alone empty filters; filters is the client's own string ("genre=драма").
    search_query = Text(max_length=MAX_QUERY, allow_empty=True, required=True)
    filters = Text(max_length=MAX_FILTERS, allow_empty=True, required=True)
    # Optional: how many results the search returned.
    results_count = StrictInteger(
        validate=validate.Range(min=0, max=MAX_RESULTS), load_default=None
    )

    @validates_schema
    def _something_searched(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data["search_query"].strip() and not data["filters"].strip():
            raise ValidationError(
                "Give a search_query, filters or both; neither was given.",
                field_name="search_query",
            )
