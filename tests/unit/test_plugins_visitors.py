"""Visitors over every event table (plugins/page_view/visitors.py) on chDB: identity links
recorded by a pass, once whatever is replayed; one person per stitched visitor; sessions;
the audience figures, bots left out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core.host.plugin_manager import build_registry, make_plugin_manager
from etl import ledger
from etl.ledger import PassResult
from etl.reports import format_report, plugin_report
from etl.runner import _load
from etl.transform import transform
from etl.warehouse import Warehouse
from tests.etl_helpers import batch_of, envelope, query

REGISTRY = build_registry(make_plugin_manager())
NOW = datetime.now(UTC).replace(microsecond=0)
PAGE = {"page_view_id": "7f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8", "page_type": "movie"}
CLICK = {"element_type": "trailer", "page_type": "movie"}
SEARCH = {"search_query": "солярис", "filters": ""}


def event(name, data, seconds, *, user=None, session="s1", anon="a1", bot=False, ago_days=0):
    signed_in = {"user_id": user, "identity": "verified"} if user else {}
    return envelope(
        name,
        data,
        at=NOW - timedelta(days=ago_days) + timedelta(seconds=seconds - 600),
        anonymous_id=anon,
        session_id=session,
        is_bot=bot,
        **signed_in,
    )


#: A visit: two pages and a click anonymous, a sign-in, then a search; another anonymous
#: visitor; a bot; last week's visit of the first visitor; an event of no visitor.
MESSAGES = [
    event("page_view_start", PAGE, 0),
    event("element_click", CLICK, 10),
    event("page_view_start", PAGE, 20),
    event("search_filter", SEARCH, 90, user="42"),
    event("page_view_start", PAGE, 0, session="s2", anon="a2"),
    event("page_view_start", PAGE, 5, session="s3", anon="a3", bot=True),
    event("element_click", CLICK, 0, session="s0", ago_days=7),
    # A client that sends no visitor fields: no session, no person.
    envelope("element_click", CLICK, at=NOW - timedelta(seconds=60)),
]


def load(settings, warehouse: Warehouse, messages: list[dict]) -> None:
    batch = batch_of(settings.kafka.topic, messages)
    outcomes = [transform(record, REGISTRY) for record in batch.records]
    with warehouse.session() as client:
        result = PassResult(str(uuid.uuid4()))
        _load(client, warehouse, settings, REGISTRY, batch, outcomes, result, None)


@pytest.fixture
def loaded(settings) -> Warehouse:
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        warehouse.ensure_schema(client, REGISTRY, ledger.TABLES)
    load(settings, warehouse, MESSAGES)
    load(settings, warehouse, MESSAGES)  # a replay of the same pass
    return warehouse


def test_a_verified_user_with_an_anonymous_id_is_linked_once(settings, loaded) -> None:
    links = query(
        settings,
        "SELECT anonymous_id, user_id, count(), min(first_seen), max(last_seen) "
        "FROM {db}.identity_links GROUP BY anonymous_id, user_id".replace(
            "{db}", settings.warehouse.database
        ),
    )
    [(anon, user, rows, first, last)] = links
    assert (anon, user) == ("a1", "42") and rows <= 2
    assert first == last


def test_people_map_each_anonymous_id_to_its_person(settings, loaded) -> None:
    rows = query(
        settings,
        f"SELECT anonymous_id, person_id, user_id FROM {settings.warehouse.database}.people "
        "ORDER BY anonymous_id",
    )
    assert rows == [("a1", "42", "42"), ("a2", "a2", None), ("a3", "a3", None)]


def test_a_session_spans_the_sign_in_and_is_one_person(settings, loaded) -> None:
    rows = query(
        settings,
        "SELECT session_id, person_id, user_id, anonymous_id, duration_s, events, pages, is_bot "
        f"FROM {settings.warehouse.database}.sessions ORDER BY session_id",
    )
    assert rows == [
        ("s0", "42", "anonymous", "a1", 0.0, 1, 0, False),
        ("s1", "42", "42", "a1", 90.0, 4, 2, False),
        ("s2", "a2", "anonymous", "a2", 0.0, 1, 1, False),
        ("s3", "a3", "anonymous", "a3", 0.0, 1, 1, True),
    ]


def test_the_audience_counts_people_not_bots(settings, loaded) -> None:
    report = plugin_report(settings, REGISTRY, "audience")
    assert report.figures == {
        "dau": 2,
        "wau": 2,
        "mau": 2,
        "sessions_per_day": 2,
        "median_session_s": 45.0,
        "dau_wow_change": 1.0,
    }
    assert report.columns == ["day", "people", "sessions", "median session s", "bot events"]
    assert sum(row[4] for row in report.rows) == 1
    assert "dau: 2" in format_report(report)
