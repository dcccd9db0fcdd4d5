"""The product specification's event contract, copied by hand into the tests.

Source: the product specification (``shared/seed/000_a12ca3a640b3bd6f.txt``, section
"Логика работы с событиями"). The web and app teams code against these shapes, so the
built-in plugins must accept them exactly: same names, same types, all required.
Edit this file only when the specification changes, never to follow the code.
"""

from __future__ import annotations

import uuid

#: The ``data`` fields of each event and their JSON types, as the specification lists them.
CONTRACT: dict[str, dict[str, type]] = {
    "element_click": {"element_type": str, "page_type": str},
    "page_view_start": {"page_view_id": uuid.UUID, "page_type": str},
    "page_view_end": {"page_view_id": uuid.UUID, "page_type": str},
    "quality_change": {"video_id": str, "old_quality": int, "new_quality": int},
    "video_complete": {"video_id": str, "duration_total": bool},
    "search_filter": {"search_query": str, "filters": str},
}

#: The client-made id of one page view, shared by its start and its end.
PAGE_VIEW_ID = "5b0e3c1a-9d2f-4e8b-a6c7-1f2e3d4c5b6a"

#: One example of each event, with the specification's fields only, as a client sends it.
EXAMPLES: list[dict] = [
    {
        "event": "element_click",
        "token": None,
        "data": {"element_type": "trailer", "page_type": "movie"},
    },
    {
        "event": "page_view_start",
        "token": None,
        "data": {"page_view_id": PAGE_VIEW_ID, "page_type": "category"},
    },
    {
        "event": "page_view_end",
        "token": None,
        "data": {"page_view_id": PAGE_VIEW_ID, "page_type": "category"},
    },
    {
        "event": "quality_change",
        "token": None,
        "data": {"video_id": "tt0111161", "old_quality": 720, "new_quality": 1080},
    },
    {
        "event": "video_complete",
        "token": None,
        "data": {"video_id": "tt0111161", "duration_total": True},
    },
    {
        "event": "search_filter",
        "token": None,
        "data": {"search_query": "Брат 2", "filters": "genre=драма"},
    },
]

#: A value of the wrong JSON type for each kind of field.
WRONG_TYPE: dict[type, object] = {
    str: 42,
    int: "720",
    bool: "true",
    uuid.UUID: "not-a-uuid",
}


def with_token(example: dict, token: str | None) -> dict:
    """``example`` with ``token`` in its envelope; the data is the specification's, unchanged."""
    return {**example, "token": token, "data": dict(example["data"])}
