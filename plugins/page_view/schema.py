"""The ``data`` of ``page_view_start`` and ``page_view_end`` events."""

from __future__ import annotations

from marshmallow import Schema

from core import UUID, Integer, Text

MAX_URL = 2048
#: Thirty days in milliseconds: longer than any tab stays open, and fits UInt32.
MAX_VISIBLE_MS = 30 * 24 * 60 * 60 * 1000


class PageViewSchema(Schema):
    """Both ends of a page view: the specification's two fields, then optional ones."""

    # The specification's fields; the client makes page_view_id and keeps it until the page is left.
    page_view_id = UUID(
        required=True,
        metadata={"description": "Made by the client; shared by the start and the end of a view."},
    )
    page_type = Text(
        max_length=64,
        required=True,
        metadata={"description": "The kind of page: movie, category, promotion, ..."},
    )
    # Optional: the catalogue id of the video the page is about.
    video_id = Text(
        max_length=128,
        load_default=None,
        metadata={"description": "The catalogue id of the video the page is about."},
    )


class PageViewStartSchema(PageViewSchema):
    url = Text(max_length=MAX_URL, load_default=None, metadata={"description": "The page's URL."})
    referrer = Text(
        max_length=MAX_URL,
        load_default=None,
        metadata={"description": "The URL the viewer came from."},
    )


class PageViewEndSchema(PageViewSchema):
    visible_ms = Integer(
        min=0,
        max=MAX_VISIBLE_MS,
        load_default=None,
        metadata={"description": "How long the page was visible, measured by the client."},
    )
