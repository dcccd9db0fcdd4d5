"""The ``data`` of ``page_view_start`` and ``page_view_end`` events."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from core import StrictInteger, Text

MAX_URL = 2048
#: Thirty days in milliseconds: longer than any tab stays open, and fits UInt32.
MAX_VISIBLE_MS = 30 * 24 * 60 * 60 * 1000


class PageViewSchema(Schema):
    """Both ends of a page view: the specification's two fields, then optional ones."""

    # The specification's fields; the client makes page_view_id and keeps it until the page is left.
    page_view_id = fields.UUID(required=True)
    page_type = Text(max_length=64, required=True)
    # Optional: the catalogue id of the video the page is about.
    video_id = Text(max_length=128, load_default=None)


class PageViewStartSchema(PageViewSchema):
    url = Text(max_length=MAX_URL, load_default=None)
    referrer = Text(max_length=MAX_URL, load_default=None)


class PageViewEndSchema(PageViewSchema):
    visible_ms = StrictInteger(
        validate=validate.Range(min=0, max=MAX_VISIBLE_MS), load_default=None
    )
