"""Events POSTed to the API land, with every value intact, in their ClickHouse tables."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core.host.plugin_manager import build_registry, make_plugin_manager
from etl.runner import run_pass
from tests.etl_helpers import query

URL = "/api/v1/events"


def test_posted_events_reach_their_tables_with_every_value(
    live_client, live_settings, login
) -> None:
    token = login("user-77")
    video, view = "tt0111161", str(uuid.uuid4())
    events = [
        ("page_view_start", token, {"page_view_id": view, "page_type": "movie", "video_id": video}),
        (
            "element_click",
            None,
            {
                "element_type": "trailer",
                "page_type": "movie",
                "element_id": "p-1",
                "video_id": video,
                "position": 3,
            },
        ),
        (
            "quality_change",
            token,
            {"video_id": video, "old_quality": 720, "new_quality": 1080, "reason": "manual"},
        ),
        (
            "video_complete",
            token,
            {"video_id": video, "duration_total": True, "watched_s": 5400, "duration_s": 5400},
        ),
        (
            "search_filter",
            None,
            {"search_query": "комедии «Брат» ёж", "filters": "жанр=комедия", "results_count": 12},
        ),
        ("page_view_end", token, {"page_view_id": view, "page_type": "movie", "visible_ms": 1500}),
    ]
    before = datetime.now(UTC) - timedelta(seconds=1)
    ids = {}
    for name, tok, data in events:
        response = live_client.post(URL, json={"event": name, "token": tok, "data": data})
        assert response.status_code == 202, response.json
        ids[name] = uuid.UUID(response.json["event_id"])

    result = run_pass(live_settings, build_registry(make_plugin_manager()))
    assert result.messages == len(events)

    [click] = query(
        live_settings,
        "SELECT user_id, identity, element_type, element_id, page_type, video_id, position, "
        "event_id FROM {db}.element_clicks",
    )
    assert click == (
        "anonymous",
        "anonymous",
        "trailer",
        "p-1",
        "movie",
        video,
        3,
        ids["element_click"],
    )
    [change] = query(
        live_settings,
        "SELECT user_id, identity, video_id, old_quality, new_quality, reason "
        "FROM {db}.quality_changes",
    )
    assert change == ("user-77", "verified", video, 720, 1080, "manual")
    [complete] = query(
        live_settings,
        "SELECT user_id, video_id, duration_total, watched_s, duration_s FROM {db}.video_completes",
    )
    assert complete == ("user-77", video, True, 5400, 5400)
    [search] = query(
        live_settings, "SELECT search_query, filters, results_count FROM {db}.search_filters"
    )
    assert search == ("комедии «Брат» ёж", "жанр=комедия", 12)
    views = query(
        live_settings,
        "SELECT event, page_view_id, page_type, video_id, visible_ms, timestamp "
        "FROM {db}.page_views ORDER BY timestamp",
    )
    assert [row[:5] for row in views] == [
        ("page_view_start", uuid.UUID(view), "movie", video, None),
        ("page_view_end", uuid.UUID(view), "movie", None, 1500),
    ]
    stamps = [row[5].replace(tzinfo=UTC) for row in views]
    assert all(before <= stamp <= datetime.now(UTC) for stamp in stamps)
    [(user, duration, server_s)] = query(
        live_settings,
        "SELECT user_id, duration_s, server_s FROM {db}.page_view_durations "
        "WHERE page_view_id = %(id)s",
        id=view,
    )
    assert user == "user-77"
    assert duration == 1.5  # the end's visible_ms, measured by the client
    assert server_s == pytest.approx((stamps[1] - stamps[0]).total_seconds(), abs=0.002)
