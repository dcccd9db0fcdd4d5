"""The ``data`` of an ``element_click`` event: the specification's fields, then optional ones."""

from __future__ import annotations

from marshmallow import Schema, validate

from core import StrictInteger, Text

#: Rank of a card in a list; far beyond any list the interface shows.
MAX_POSITION = 100_000


class ElementClickSchema(Schema):
    # The specification's fields.
    element_type = Text(max_length=64, required=True)
    page_type = Text(max_length=64, required=True)
    # Optional details a client may add.
    element_id = Text(max_length=256, load_default=None)
    video_id = Text(max_length=128, load_default=None)
    position = StrictInteger(validate=validate.Range(min=0, max=MAX_POSITION), load_default=None)
