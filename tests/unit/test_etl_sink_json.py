"""Messages as the API publishes them go in as their JSON, mapped by the engine (``etl.sink``):
the same values as the Python path, a refused block row by row, a replay stored once. On
the real ClickHouse engine (chDB, in-process), with Kafka's consumer replaced."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
import pytest

import etl.transform
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.message import Client, Identity, build_message
from etl.runner import run_pass
from etl.transform import Checked, Loaded, transform
from tests.etl_helpers import BASE_TIME, batch_of, query

REGISTRY = build_registry(make_plugin_manager())
PAGE_VIEW = "7f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8"
#: Per built-in event type, the specification's shape of its data, then every field given.
SHAPES = {
    "element_click": [
        {"element_type": "trailer", "page_type": "movie"},
        {
            "element_type": "card",
            "page_type": "category",
            "element_id": "c-1",
            "video_id": "tt1",
            "position": 3,
        },
    ],
    "page_view_start": [
        {"page_view_id": PAGE_VIEW, "page_type": "movie"},
        {
            "page_view_id": str(uuid.uuid4()),
            "page_type": "movie",
            "video_id": "tt1",
            "url": "https://cinema.example/m/1",
            "referrer": "https://search.example/?q='x'\\y",
        },
    ],
    "page_view_end": [
        {"page_view_id": PAGE_VIEW, "page_type": "movie"},
        {"page_view_id": PAGE_VIEW, "page_type": "movie", "visible_ms": 12_345},
    ],
    "quality_change": [
        {"video_id": "tt0111161", "old_quality": 720, "new_quality": 1080},
        {
            "video_id": "tt0111161",
            "old_quality": 1080,
            "new_quality": 480,
            "reason": "auto",
            "position_s": 86_400,
        },
    ],
    "video_complete": [
        {"video_id": "tt0111161", "duration_total": True},
        {"video_id": "tt1", "duration_total": False, "watched_s": 10, "duration_s": 5400},
    ],
    "search_filter": [
        {"search_query": "Брат 2", "filters": "genre=драма"},
        {"search_query": "", "filters": "year=1999", "results_count": 0},
    ],
}
#: BASE_TIME as the warehouse gives it back.
NAIVE = BASE_TIME.replace(tzinfo=None)
VERIFIED = Identity("user-42", "verified")
BROWSER = Client(device="Desktop", browser="Firefox", os="Linux", is_bot=False)


def published(event: str, data: dict, index: int = 0) -> dict:
    """A message as the API publishes it: data as the schema loaded it, and the envelope of
    a signed-in browser (or, for odd ``index``, of an anonymous client with nothing more)."""
    loaded = REGISTRY.schema(event).load(data)
    version = REGISTRY[event].version
    at = BASE_TIME + timedelta(seconds=index)
    if index % 2:
        return build_message(event, loaded, Identity("anonymous", "anonymous"), at, version)
    envelope = {"anonymous_id": "a-1", "session_id": "s-1", "sent_at": at - timedelta(seconds=2)}
    return build_message(event, loaded, VERIFIED, at, version, envelope=envelope, client=BROWSER)


def _rows(settings, table: str) -> list[tuple]:
    return query(settings, f"SELECT * FROM {{db}}.{table} ORDER BY timestamp, event_id")


@pytest.mark.parametrize("event", sorted(SHAPES))
def test_the_engine_stores_the_values_the_python_path_stores(
    settings, etl_kafka, monkeypatch, event
) -> None:
    messages = [published(event, data, i) for i, data in enumerate(SHAPES[event] * 2)]
    batch = batch_of(settings.kafka.topic, messages)
    assert all(isinstance(transform(r, REGISTRY), Checked) for r in batch.records)
    python = settings.replace(warehouse_database=f"{settings.warehouse.database}_python")
    etl_kafka.batches = [batch, batch_of(python.kafka.topic, messages)]
    table = REGISTRY[event].table

    through_engine = run_pass(settings, REGISTRY)
    monkeypatch.setattr(etl.transform, "by_engine", lambda message, registry: False)
    through_python = run_pass(python, REGISTRY)

    assert through_engine.rows == through_python.rows == {table: len(messages)}
    assert _rows(settings, table) == _rows(python, table)
    assert len(_rows(settings, table)) == len(messages)
    deliveries = (
        "SELECT event_id, event, target_table, timestamp, offset FROM {db}.event_deliveries"
    )
    assert sorted(query(settings, deliveries)) == sorted(query(python, deliveries))
    links = "SELECT anonymous_id, user_id, first_seen, last_seen FROM {db}.identity_links"
    assert (
        query(settings, links)
        == query(python, links)
        == [("a-1", "user-42", NAIVE, NAIVE + timedelta(seconds=2))]
    )


def test_a_block_the_engine_refuses_goes_row_by_row_and_stores_the_good_rows_once(
    settings, etl_kafka, caplog
) -> None:
    good = [published("quality_change", SHAPES["quality_change"][0], i) for i in range(3)]
    # What the API would have refused: past the column's UInt16, and a required field null.
    too_high = {**good[0], "event_id": str(uuid.uuid4())}
    too_high["data"] = {**good[0]["data"], "new_quality": 70_000}
    no_video = {**good[1], "event_id": str(uuid.uuid4()), "data": {**good[1]["data"]}}
    no_video["data"]["video_id"] = None
    messages = [good[0], too_high, good[1], no_video, good[2]]
    etl_kafka.batches = [batch_of(settings.kafka.topic, messages)]

    result = run_pass(settings, REGISTRY)

    assert "etl.json_block_refused" in caplog.text
    assert result.rows == {"quality_changes": 3}
    assert result.dead_letters == {"schema_invalid": 2}
    assert query(settings, "SELECT offset, reason FROM {db}.dead_letters ORDER BY offset") == [
        (1, "schema_invalid"),
        (3, "schema_invalid"),
    ]
    stored = query(settings, "SELECT toString(event_id) FROM {db}.quality_changes")
    assert sorted(stored) == sorted((m["event_id"],) for m in good)
    assert query(settings, "SELECT count() FROM {db}.event_deliveries") == [(3,)]


def test_a_refused_block_holds_rows_of_one_event_type_only(settings, etl_kafka) -> None:
    clicks = [published("element_click", SHAPES["element_click"][0], i) for i in range(2)]
    bad = published("quality_change", SHAPES["quality_change"][0], 5)
    bad["data"] = {**bad["data"], "old_quality": -1}
    etl_kafka.batches = [batch_of(settings.kafka.topic, [clicks[0], bad, clicks[1]])]

    result = run_pass(settings, REGISTRY)

    assert result.rows == {"element_clicks": 2}
    assert result.dead_letters == {"schema_invalid": 1}


def test_an_exact_replay_through_the_engine_stores_nothing_twice(settings, etl_kafka) -> None:
    messages = [
        published(event, data, i)
        for event, shapes in sorted(SHAPES.items())
        for i, data in enumerate(shapes)
    ]
    batch = batch_of(settings.kafka.topic, messages)
    etl_kafka.batches = [batch, batch]

    def crash(batch):
        raise ConnectionError("the broker went away before the commit")

    etl_kafka.on_commit = crash
    with pytest.raises(ConnectionError):
        run_pass(settings, REGISTRY)
    etl_kafka.on_commit = None
    replay = run_pass(settings, REGISTRY)

    assert replay.replayed
    for table in {event_type.table for event_type in REGISTRY}:
        expected = sum(REGISTRY[m["event"]].table == table for m in messages)
        assert query(settings, f"SELECT count() FROM {{db}}.{table}") == [(expected,)]
    # each pass records its deliveries: the quality report counts the replay's as redelivered
    assert query(
        settings, "SELECT uniqExact(event_id), uniqExact(pass_id) FROM {db}.event_deliveries"
    ) == [(len(messages), 2)]


def test_a_message_of_an_older_version_is_validated_again_and_mapped_in_python() -> None:
    message = published("search_filter", SHAPES["search_filter"][0])
    older = orjson.dumps({**message, "schema_version": 1})

    outcome = transform(batch_of("t", [older]).records[0], REGISTRY)

    assert isinstance(outcome, Loaded)
    assert outcome.row["schema_version"] == 1


def test_an_event_published_twice_is_stored_once_through_the_engine(settings, etl_kafka) -> None:
    """The API can publish one event twice (a send that timed out yet reached Kafka, then its
    spooled copy): two records, one event_id. The engine leaves out the copy in the same
    block and the one a later pass reads (found by the chaos run: raw count() 2)."""
    first, second, other = (
        published("element_click", SHAPES["element_click"][0], i) for i in range(3)
    )
    topic = settings.kafka.topic
    etl_kafka.batches = [
        batch_of(topic, [first, second, first]),  # the copy in the same pass
        batch_of(topic, [other, second], start=3),  # and in a later one
    ]
    assert all(isinstance(transform(r, REGISTRY), Checked) for r in etl_kafka.batches[0].records)

    run_pass(settings, REGISTRY)
    run_pass(settings, REGISTRY)

    assert query(settings, "SELECT count(), uniqExact(event_id) FROM {db}.element_clicks") == [
        (3, 3)
    ]
    # Every delivery is recorded: the quality report counts the copies as absorbed.
    assert query(settings, "SELECT count() FROM {db}.event_deliveries") == [(5,)]
