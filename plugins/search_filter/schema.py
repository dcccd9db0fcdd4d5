"""The ``data`` of a ``search_filter`` event: the specification's two fields, then optional ones."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, validates_schema

from core import Integer, Text

MAX_QUERY = 512
MAX_FILTERS = 2048
MAX_RESULTS = 10_000_000


class SearchFilterSchema(Schema):
    # The specification's fields. A search by filters alone has an empty search_query,
    # one by text alone empty filters; filters is the client's own string ("genre=драма").
    search_query = Text(
        max_length=MAX_QUERY,
        allow_empty=True,
        required=True,
        metadata={"description": "The search text as typed; empty when only filters were used."},
    )
    filters = Text(
        max_length=MAX_FILTERS,
        allow_empty=True,
        required=True,
        metadata={"description": "The filters as the client sends them (genre=драма); or empty."},
    )
    # Optional: how many results the search returned.
    results_count = Integer(
        min=0,
        max=MAX_RESULTS,
        load_default=None,
        metadata={"description": "How many results the search returned."},
    )

    @validates_schema
    def _something_searched(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data["search_query"].strip() and not data["filters"].strip():
            raise ValidationError(
                "Give a search_query, filters or both; neither was given.",
                field_name="search_query",
            )
