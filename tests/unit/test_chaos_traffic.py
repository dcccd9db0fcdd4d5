"""The chaos traffic: the specification's shapes, the tracker's waits, each event's outcome."""

from __future__ import annotations

import random

import pytest

from chaos.traffic import EVENTS, MAX_WAIT_S, Sent, backoff, event_data

REQUIRED = {
    "element_click": {"element_type": str, "page_type": str},
    "page_view_start": {"page_view_id": str, "page_type": str},
    "page_view_end": {"page_view_id": str, "page_type": str},
    "quality_change": {"video_id": str, "old_quality": int, "new_quality": int},
    "video_complete": {"video_id": str, "duration_total": bool},
    "search_filter": {"search_query": str, "filters": str},
}


@pytest.mark.parametrize("name", EVENTS)
def test_every_event_has_exactly_the_specifications_required_fields(name):
    data = event_data(random.Random(1), name, "7f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8")
    assert {key: type(value) for key, value in data.items()} == REQUIRED[name]


def test_the_wait_is_retry_after_else_the_trackers_doubling_capped():
    assert backoff(3.0, 1) == 3.0
    assert [backoff(None, attempt) for attempt in (1, 2)] == [1.0, 2.0]
    assert backoff(600.0, 1) == MAX_WAIT_S


@pytest.mark.parametrize(
    ("answers", "event_id", "outcome", "maybe_stored"),
    [
        ([202], "e", "accepted", False),
        ([0, 202], "e", "accepted", True),
        ([503, 503, 503], None, "refused", False),
        ([0, 503, 503], None, "refused", True),
        ([503, 0], None, "unanswered", True),
        ([], None, "unanswered", False),
    ],
)
def test_an_events_outcome_is_its_last_answer(answers, event_id, outcome, maybe_stored):
    event = Sent("k", "search_filter", {}, None, "2026-12-01T00:00:00.000Z", "single")
    event.answers, event.event_id = answers, event_id
    assert (event.outcome, event.maybe_stored) == (outcome, maybe_stored)


def test_a_503_unconfirmed_may_have_been_stored():
    event = Sent("k", "search_filter", {}, None, "2026-12-01T00:00:00.000Z", "single")
    event.answers, event.unconfirmed = [503, 503, 503], True
    assert (event.outcome, event.maybe_stored) == ("refused", True)
