"""A pass's rows go in as one insert block per table, each with the deduplication token of its
records (``etl.sink``): on the real ClickHouse engine (chDB, in-process), with Kafka's
consumer replaced."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import pytest
from clickhouse_connect.driver.exceptions import DataError, OperationalError

import etl.runner
from core.host.plugin_manager import build_registry, make_plugin_manager
from etl.consume import Record
from etl.ledger import DEAD_LETTER_COLUMNS
from etl.runner import run_pass
from etl.sink import insert_token
from tests.etl_helpers import (
    StarsPlugin,
    batch_of,
    click,
    envelope,
    kafka_record,
    merged,
    query,
    reordered,
    stars_rating,
)

REGISTRY = build_registry(make_plugin_manager())
DATA_TABLES = {event_type.table for event_type in REGISTRY}
RATED = build_registry(make_plugin_manager(extra_plugins=[StarsPlugin()]))


class Inserts(list):
    """(table, column names, rows, settings) of every insert; ``refuse(table, rows)`` may
    return an exception for the insert to raise instead of storing anything."""

    refuse = None


@pytest.fixture
def inserts(monkeypatch):
    """Every ``client.insert`` of a pass: (table, column names, rows, settings)."""
    seen = Inserts()
    real_session = etl.runner.Warehouse.session

    @contextmanager
    def recording_session(self):
        with real_session(self) as client:
            real_insert = client.insert

            def insert(table, data, column_names=None, settings=None, **kwargs):
                row = (table.split(".")[-1], list(column_names), list(data), dict(settings or {}))
                refused = seen.refuse(row[0], row[2]) if seen.refuse else None
                if refused is not None:
                    raise refused
                seen.append(row)
                return real_insert(
                    table, data, column_names=column_names, settings=settings, **kwargs
                )

            client.insert = insert
            try:
                yield client
            finally:
                client.insert = real_insert

    monkeypatch.setattr(etl.runner.Warehouse, "session", recording_session)
    return seen


def test_insert_tokens_depend_on_exactly_the_records_range_partition_table_and_columns():
    records = [kafka_record(b"", 5), kafka_record(b"", 6)]
    token = insert_token("events", "t", ["a", "b"], 0, (5, 7), records)

    assert token == insert_token("events", "t", ["a", "b"], 0, (5, 7), list(records))
    assert token != insert_token("events", "u", ["a", "b"], 0, (5, 7), records)
    assert token != insert_token("events", "t", ["a"], 0, (5, 7), records)
    assert token != insert_token("events", "t", ["a", "b"], 0, (5, 7), records[:1])
    assert token != insert_token("other", "t", ["a", "b"], 0, (5, 7), records)
    assert token != insert_token("events", "t", ["a", "b"], 1, (5, 7), records)
    assert token != insert_token("events", "t", ["a", "b"], 0, (4, 7), records)
    # the same offset holding another record (a recreated log): another block
    other = [records[0], Record("events", 0, 6, b"k", b"", 1)]
    assert token != insert_token("events", "t", ["a", "b"], 0, (5, 7), other)


def test_insert_tokens_do_not_change_from_one_version_to_the_next():
    # A pass that crashed before its commit is replayed by whatever version runs next:
    # its blocks are dropped only if that version derives the same tokens.
    records = [kafka_record(b"", 5), kafka_record(b"", 6)]

    assert (
        insert_token("events", "t", ["a", "b"], 0, (5, 7), records)
        == "9e1ee1bc2042e3d21a8b7dc60a996f58bed84cc6ff1d423f5a63a452b9358904"
    )


def test_every_data_insert_carries_the_token_of_its_own_block(settings, etl_kafka, inserts) -> None:
    messages = [click(position=i) for i in range(3)] + [
        envelope("video_complete", {"video_id": "tt0111161", "duration_total": True}),
        b"not json",
        b"[]",
    ]
    batch = batch_of(settings.kafka.topic, messages)
    by_event_id = {
        uuid.UUID(m["event_id"]): r
        for m, r in zip(messages, batch.records, strict=True)
        if isinstance(m, dict)
    }
    by_offset = {r.offset: r for r in batch.records}
    etl_kafka.batches = [batch]

    run_pass(settings, REGISTRY)

    data_inserts = [i for i in inserts if i[0] in DATA_TABLES]
    assert {table for table, *_ in data_inserts} == {"element_clicks", "video_completes"}
    for table, columns, rows, insert_settings in data_inserts:
        records = [by_event_id[row[columns.index("event_id")]] for row in rows]
        expected = insert_token(settings.kafka.topic, table, columns, 0, (0, 6), records)
        assert insert_settings["insert_deduplication_token"] == expected
    [(_, columns, rows, insert_settings)] = [i for i in inserts if i[0] == "dead_letters"]
    records = [by_offset[row[columns.index("offset")]] for row in rows]
    assert len(records) == 2
    assert insert_settings["insert_deduplication_token"] == insert_token(
        settings.kafka.topic, "dead_letters", DEAD_LETTER_COLUMNS, 0, (0, 6), records
    )


def test_a_block_holds_one_tables_rows_of_one_partition(settings, etl_kafka, inserts) -> None:
    topic = settings.kafka.topic
    etl_kafka.batches = [
        merged(batch_of(topic, [click(), click()]), batch_of(topic, [click()], partition=1))
    ]

    run_pass(settings, REGISTRY)

    assert [len(rows) for table, _, rows, _ in inserts if table == "element_clicks"] == [2, 1]


def test_a_clean_batch_goes_in_as_one_block_per_table(settings, etl_kafka, inserts) -> None:
    etl_kafka.batches = [batch_of(settings.kafka.topic, [click(position=i) for i in range(4)])]

    run_pass(settings, REGISTRY)

    assert [len(rows) for table, _, rows, _ in inserts if table == "element_clicks"] == [4]


def test_a_replay_of_the_same_offsets_is_dropped_even_if_its_bytes_differ(
    settings, etl_kafka
) -> None:
    first = click(position=1)
    # The same offsets read again, their row now different: say the plugin's mapper changed
    # between the crash and the replay. ClickHouse's own hash of the block would not match.
    again = {**first, "data": {**first["data"], "position": 2}}
    etl_kafka.batches = [
        batch_of(settings.kafka.topic, [first]),
        batch_of(settings.kafka.topic, [again]),
    ]

    run_pass(settings, REGISTRY)
    run_pass(settings, REGISTRY)

    assert query(settings, "SELECT count() FROM {db}.element_clicks") == [(1,)]


def test_an_event_published_twice_is_stored_once_in_one_pass_or_two(settings, etl_kafka) -> None:
    """The API can publish one event twice (a send that timed out yet reached Kafka, then
    its spooled copy): two records, one event_id. Found by the chaos run (raw count() 2)."""
    first, second, other = click(position=1), click(position=2), click(position=3)
    topic = settings.kafka.topic
    etl_kafka.batches = [
        batch_of(topic, [first, second, first]),  # the copy in the same pass
        batch_of(topic, [other, second], start=3),  # and in a later one
    ]

    run_pass(settings, REGISTRY)
    run_pass(settings, REGISTRY)

    assert query(settings, "SELECT count(), uniqExact(event_id) FROM {db}.element_clicks") == [
        (3, 3)
    ]
    # Every delivery is recorded: the quality report counts the copies as absorbed.
    assert query(settings, "SELECT count() FROM {db}.event_deliveries") == [(5,)]


def test_a_pass_that_did_not_commit_is_replayed_and_stores_nothing_twice(
    settings, etl_kafka
) -> None:
    """The replay reads the same offsets, its records interleaved otherwise across partitions:
    each block, data or dead letters, gets the same token and ClickHouse drops it."""
    topic = settings.kafka.topic
    batch = merged(
        batch_of(topic, [click(), b"not json", click(), b"[]"], partition=0),
        batch_of(topic, [click(), b"{}", click()], partition=1),
    )
    etl_kafka.batches = [
        batch,
        reordered(batch, key=lambda r: (r.offset, -r.partition)),
        batch_of(topic, [click()], partition=0, start=4),
    ]

    def crash(batch):
        raise ConnectionError("the broker went away before the commit")

    etl_kafka.on_commit = crash
    with pytest.raises(ConnectionError):
        run_pass(settings, REGISTRY)
    etl_kafka.on_commit = None
    replay = run_pass(settings, REGISTRY)
    after = run_pass(settings, REGISTRY)

    assert etl_kafka.reads[1][3] == {0: (0, 4), 1: (0, 3)}
    assert (replay.replayed, after.replayed) == (True, False)
    assert query(settings, "SELECT count() FROM {db}.element_clicks") == [(5,)]
    assert query(settings, "SELECT count() FROM {db}.dead_letters") == [(3,)]
    assert etl_kafka.commits == [{0: 4, 1: 3}, {0: 5}]
    assert query(settings, "SELECT replayed FROM {db}.etl_passes FINAL ORDER BY replayed") == [
        (0,), (0,), (1,),
    ]  # fmt: skip


def test_a_row_its_table_refuses_is_dead_lettered_and_the_rest_of_its_block_loads(
    settings, etl_kafka, inserts
) -> None:
    messages = [stars_rating(4), stars_rating(300), stars_rating(5), click()]
    batch = batch_of(settings.kafka.topic, messages)
    by_event_id = {
        uuid.UUID(m["event_id"]): r for m, r in zip(messages, batch.records, strict=True)
    }
    etl_kafka.batches = [batch]

    result = run_pass(settings, RATED)

    assert sorted(query(settings, "SELECT stars FROM {db}.test_ratings")) == [(4,), (5,)]
    assert result.rows == {"test_ratings": 2, "element_clicks": 1}
    assert result.dead_letters == {"insert_failed": 1}
    [(offset, reason, detail)] = query(
        settings, "SELECT offset, reason, detail FROM {db}.dead_letters"
    )
    assert (offset, reason) == (1, "insert_failed")
    assert detail.startswith("test_ratings: ") and "stars" in detail
    assert query(settings, "SELECT offset FROM {db}.event_deliveries ORDER BY offset") == [
        (0,), (2,), (3,),
    ]  # fmt: skip
    assert etl_kafka.commits == [{0: 4}]
    # the rows retried one by one carry the tokens of their own one-row blocks
    for table, columns, rows, insert_settings in inserts:
        if table in ("test_ratings", "element_clicks"):
            records = [by_event_id[row[columns.index("event_id")]] for row in rows]
            expected = insert_token(settings.kafka.topic, table, columns, 0, (0, 4), records)
            assert insert_settings["insert_deduplication_token"] == expected


def test_a_refused_rows_detail_is_cut_to_2000_characters(settings, etl_kafka, inserts) -> None:
    def refuse(table, rows):
        return ValueError("x" * 5000) if table == "element_clicks" else None

    inserts.refuse = refuse
    etl_kafka.batches = [batch_of(settings.kafka.topic, [click()])]

    run_pass(settings, REGISTRY)

    [(reason, detail)] = query(settings, "SELECT reason, detail FROM {db}.dead_letters")
    assert (reason, len(detail)) == ("insert_failed", 2000)
    assert detail.startswith("element_clicks: xxx")


@pytest.mark.parametrize(
    "refusals",
    [
        [OperationalError("connection lost")],
        [DataError("a value out of range"), OperationalError("connection lost")],
    ],
    ids=["while inserting the block", "while retrying its rows one by one"],
)
def test_the_warehouse_going_away_mid_insert_fails_the_pass_and_commits_nothing(
    settings, etl_kafka, inserts, refusals
) -> None:
    refusals = list(refusals)

    def refuse(table, rows):
        return refusals.pop(0) if table == "element_clicks" and refusals else None

    inserts.refuse = refuse
    etl_kafka.batches = [batch_of(settings.kafka.topic, [click(), click()])]

    with pytest.raises(OperationalError):
        run_pass(settings, REGISTRY)

    assert etl_kafka.commits == []
    assert etl_kafka.consumers[0].closed
    assert query(settings, "SELECT count() FROM {db}.dead_letters") == [(0,)]
    assert query(settings, "SELECT status FROM {db}.etl_passes FINAL") == [("planned",)]
