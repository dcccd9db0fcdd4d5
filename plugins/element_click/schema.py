"""The ``data`` of an ``element_click`` event."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from core.fields import StrictInteger, Text

#: Rank of a card in a list; far beyond any list the interface shows.
MAX_POSITION = 100_000


class ElementClickSchema(Schema):
    element_type = Text(max_length=64, required=True)
    element_id = Text(max_length=256, required=True)
    page_type = Text(max_length=64, required=True)
    movie_id = fields.UUID(load_default=None)
    position = StrictInteger(validate=validate.Range(min=0, max=MAX_POSITION), load_default=None)
