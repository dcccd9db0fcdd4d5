"""The ``data`` of an ``element_click`` event: the specification's fields, then optional ones."""

from __future__ import annotations

from marshmallow import Schema

from core import Integer, Text

#: Rank of a card in a list; far beyond any list the interface shows.
MAX_POSITION = 100_000


class ElementClickSchema(Schema):
    # The specification's fields.
    element_type = Text(
        max_length=64,
        required=True,
        metadata={"description": "What was clicked: movie, category, trailer, ..."},
    )
    page_type = Text(
        max_length=64,
        required=True,
        metadata={"description": "The page the element is on: movie, category, promotion, ..."},
    )
    # Optional details a client may add.
    element_id = Text(
        max_length=256,
        load_default=None,
        metadata={"description": "The client's own identifier of the element."},
    )
    video_id = Text(
        max_length=128,
        load_default=None,
        metadata={"description": "The catalogue id of the video behind a clicked card."},
    )
    position = Integer(
        min=0,
        max=MAX_POSITION,
        load_default=None,
        metadata={"description": "The rank of the element in its list, 0 for the first."},
    )
