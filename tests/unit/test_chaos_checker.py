"""The chaos checker: every answer against the raw rows, and the quality report's figures."""

from __future__ import annotations

from datetime import UTC, datetime

from chaos.checker import Quality, Row, compare, mismatches
from chaos.traffic import Sent

SENT_AT = "2026-12-01T10:00:00.123Z"
CALM = Quality(gaps=0, stored_twice=0, lag=0)


def sent(key: str, answers: list[int], event_id: str | None = None, user: str | None = None):
    event = Sent(
        key, "search_filter", {"search_query": "q", "filters": ""}, user, SENT_AT, "single"
    )
    event.answers = answers
    event.event_id = event_id
    event.accepted_at = 1_700_000_000.0 if event_id else None
    return event


def row(key: str, event_id: str, user: str = "anonymous", query: str = "q") -> Row:
    moment = datetime(2026, 12, 1, 10, 0, 0, 123000, tzinfo=UTC)
    return Row(event_id, "search_filter", key, user, moment, {"search_query": query, "filters": ""})


def test_accepted_events_stored_once_with_their_values_pass():
    events = [sent("a", [202], "id-a", user="u1"), sent("b", [0, 202], "id-b")]
    rows = [row("a", "id-a", user="u1"), row("b", "id-b")]
    found = compare(events, rows, {}, CALM, CALM)
    assert found.passed, found.violations
    assert (found.accepted, found.stored_once, found.lost, found.stored_twice) == (2, 2, 0, 0)


def test_a_lost_event_and_one_stored_twice_are_violations():
    events = [sent("a", [202], "id-a"), sent("b", [202], "id-b")]
    rows = [row("b", "id-b"), row("b", "id-b")]
    found = compare(events, rows, {}, CALM, CALM)
    assert (found.lost, found.stored_twice) == (1, 1)
    assert any(v.startswith("lost: a") for v in found.violations)
    assert any(v.startswith("stored 2 times: b") for v in found.violations)


def test_a_refused_event_stored_is_a_violation_unless_an_attempt_went_unanswered():
    refused = [sent("a", [503, 503, 503]), sent("b", [0, 503, 503])]
    rows = [row("a", "id-x"), row("b", "id-y")]
    found = compare(refused, rows, {}, CALM, CALM)
    assert found.refused[503] == 2
    assert found.unanswered_stored == 1
    assert found.violations == ["refused ([503, 503, 503]) but stored: a"]


def test_a_retry_after_a_lost_answer_is_counted_apart_not_as_stored_twice():
    events = [sent("a", [0, 202], "id-2")]
    rows = [row("a", "id-1"), row("a", "id-2")]
    found = compare(events, rows, {}, CALM, CALM)
    assert found.passed
    assert (found.stored_once, found.stored_twice, found.retry_copies) == (1, 0, 1)


def test_rows_of_no_event_sent_and_wrong_values_are_violations():
    rows = [row("a", "id-a", query="changed"), row("zz", "id-z")]
    found = compare([sent("a", [202], "id-a")], rows, {}, CALM, CALM)
    assert any("rows of no event sent" in v for v in found.violations)
    assert any("values differ for a" in v and "search_query" in v for v in found.violations)


def test_the_quality_report_must_agree_with_the_checker():
    found = compare([], [], {}, CALM, Quality(gaps=3, stored_twice=0, lag=0))
    assert found.violations and "gaps 3 vs 0" in found.violations[0]


def test_the_longest_time_to_a_table_is_from_the_202_to_the_first_load():
    events = [sent("a", [202], "id-a"), sent("b", [202], "id-b")]
    loaded = {
        "id-a": datetime.fromtimestamp(1_700_000_002.5, UTC),
        "id-b": datetime.fromtimestamp(1_700_000_010.0, UTC),
    }
    found = compare(events, [row("a", "id-a"), row("b", "id-b")], loaded, CALM, CALM)
    assert found.longest_to_table_s == 10.0


def test_mismatches_compare_the_user_the_clock_and_every_field():
    event = sent("a", [202], "id-a", user="u1")
    assert mismatches(event, row("a", "id-a", user="u1")) == {}
    assert set(mismatches(event, row("a", "id-a", user="anonymous"))) == {"user_id"}
