"""The ETL's sink and commit path on the real ClickHouse engine (chDB, in-process), with
Kafka's consumer replaced: what is inserted, with which deduplication token, and when
offsets are committed.
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime

import orjson
import pytest
from clickhouse_connect.driver.exceptions import DataError, OperationalError
from marshmallow import Schema, fields

import etl.runner
from core import EventType, hookimpl
from core.host.plugin_manager import build_registry, make_plugin_manager
from etl.consume import Batch, PartitionRead, Record
from etl.ledger import DEAD_LETTER_COLUMNS, dead_letter_id
from etl.runner import run_pass
from etl.sink import insert_token
from etl.warehouse import MigrationNeededError, WarehouseError
from tests.etl_helpers import envelope, query

REGISTRY = build_registry(make_plugin_manager())
DATA_TABLES = {event_type.table for event_type in REGISTRY}

RATINGS_DDL = (
    "CREATE TABLE IF NOT EXISTS {database}.{table} (event_id UUID, "
    "event LowCardinality(String), timestamp DateTime64(3, 'UTC'), user_id String, "
    "identity LowCardinality(String), schema_version UInt16 DEFAULT 1, stars UInt8) "
    "ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(timestamp) ORDER BY (stars, event_id)"
)


class RatingSchema(Schema):
    stars = fields.Integer(required=True)  # no range: the table's UInt8 is the only limit


class RatingPlugin:
    """A plugin known only to these tests, whose table refuses what its schema lets through."""

    def __init__(self, ddl: str = RATINGS_DDL) -> None:
        self.ddl = ddl

    @hookimpl
    def register_event_types(self) -> list[EventType]:
        return [
            EventType(
                name="test_rating",
                schema=RatingSchema,
                table="test_ratings",
                ddl=self.ddl,
                example={"stars": 5},
            )
        ]


RATED = build_registry(make_plugin_manager(extra_plugins=[RatingPlugin()]))


def click(**changes) -> dict:
    data = {"element_type": "trailer", "page_type": "movie", **changes}
    return envelope("element_click", data)


def batch_of(topic: str, messages: list[dict | bytes], partition: int = 0, start: int = 0) -> Batch:
    records = [
        Record(
            topic,
            partition,
            start + i,
            b"element_click",
            m if isinstance(m, bytes) else orjson.dumps(m),
            0,
        )
        for i, m in enumerate(messages)
    ]
    read = PartitionRead(partition, expected=start, end=start + len(records))
    read.offsets = [r.offset for r in records]
    read.next_offset = start + len(records)
    return Batch(topic, records, {partition: read})


def merged(*batches: Batch) -> Batch:
    """One batch holding the partitions of ``batches``, their records in the order given."""
    return Batch(
        batches[0].topic,
        [r for b in batches for r in b.records],
        {p: read for b in batches for p, read in b.partitions.items()},
    )


def reordered(batch: Batch, key) -> Batch:
    """The same batch read again, its records interleaved otherwise across partitions."""
    again = copy.deepcopy(batch)
    again.records.sort(key=key)
    return again


def rating(stars: int) -> dict:
    return envelope("test_rating", {"stars": stars})


class FakeConsumer:
    def __init__(self, kafka, etl) -> None:
        self.group = etl.group
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def kafka(monkeypatch):
    """Stands in for the consumer: ``kafka.batches`` are read in turn, commits are recorded.

    ``kafka.reads`` has the (topic, max_records, poll_timeout_s, replay) of every read and
    ``kafka.consumers`` every consumer opened; a read or commit through any other consumer
    than the pass's open one fails the pass.
    """

    class Kafka:
        batches: list[Batch] = []
        commits: list[dict[int, int]] = []
        reads: list[tuple] = []
        consumers: list[FakeConsumer] = []
        on_commit = None

    def join_group(kafka, etl):
        Kafka.consumers.append(FakeConsumer(kafka, etl))
        return Kafka.consumers[-1]

    def read_batch(consumer, topic, max_records, poll_timeout_s, replay, replay_timeout_s):
        assert consumer is Kafka.consumers[-1] and not consumer.closed
        Kafka.reads.append((topic, max_records, poll_timeout_s, replay))
        batch = Kafka.batches.pop(0)
        for read in batch.partitions.values():  # as the real one marks a replayed range
            read.exact = replay.get(read.partition, (None,))[0] == read.expected
        return batch

    def commit(consumer, batch):
        assert consumer is Kafka.consumers[-1] and not consumer.closed
        if Kafka.on_commit is not None:
            Kafka.on_commit(batch)
        Kafka.commits.append(batch.to_commit)
        return batch.to_commit

    monkeypatch.setattr(etl.runner, "join_group", join_group)
    monkeypatch.setattr(etl.runner, "read_batch", read_batch)
    monkeypatch.setattr(etl.runner, "commit", commit)
    return Kafka


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


def test_every_data_insert_carries_the_token_of_its_own_block(settings, kafka, inserts) -> None:
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
    kafka.batches = [batch]

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


def test_a_block_holds_one_tables_rows_of_one_partition(settings, kafka, inserts) -> None:
    topic = settings.kafka.topic
    kafka.batches = [
        merged(batch_of(topic, [click(), click()]), batch_of(topic, [click()], partition=1))
    ]

    run_pass(settings, REGISTRY)

    assert [len(rows) for table, _, rows, _ in inserts if table == "element_clicks"] == [2, 1]


def test_a_clean_batch_goes_in_as_one_block_per_table(settings, kafka, inserts) -> None:
    kafka.batches = [batch_of(settings.kafka.topic, [click(position=i) for i in range(4)])]

    run_pass(settings, REGISTRY)

    assert [len(rows) for table, _, rows, _ in inserts if table == "element_clicks"] == [4]


def test_a_replay_of_the_same_offsets_is_dropped_even_if_its_bytes_differ(settings, kafka) -> None:
    first = click(position=1)
    # The same offsets read again, their row now different: say the plugin's mapper changed
    # between the crash and the replay. ClickHouse's own hash of the block would not match.
    again = {**first, "data": {**first["data"], "position": 2}}
    kafka.batches = [
        batch_of(settings.kafka.topic, [first]),
        batch_of(settings.kafka.topic, [again]),
    ]

    run_pass(settings, REGISTRY)
    run_pass(settings, REGISTRY)

    assert query(settings, "SELECT count() FROM {db}.element_clicks") == [(1,)]


def test_offsets_are_committed_only_once_the_rows_are_stored(settings, kafka) -> None:
    stored_at_commit: list[int] = []
    kafka.on_commit = lambda batch: stored_at_commit.append(
        query(settings, "SELECT count() FROM {db}.element_clicks")[0][0]
    )
    kafka.batches = [batch_of(settings.kafka.topic, [click(), click(), click()])]

    run_pass(settings, REGISTRY)

    assert stored_at_commit == [3]
    assert kafka.commits == [{0: 3}]


def test_a_pass_whose_load_fails_commits_nothing(settings, kafka, monkeypatch) -> None:
    def failing_load(*args, **kwargs):
        raise WarehouseError("the warehouse went away")

    monkeypatch.setattr(etl.runner, "_load", failing_load)
    kafka.batches = [batch_of(settings.kafka.topic, [click()])]

    with pytest.raises(WarehouseError):
        run_pass(settings, REGISTRY)
    assert kafka.commits == []


def test_a_bad_message_is_dead_lettered_and_still_committed_past(settings, kafka) -> None:
    kafka.batches = [batch_of(settings.kafka.topic, [b"not json", click()])]

    result = run_pass(settings, REGISTRY)

    assert result.rows == {"element_clicks": 1}
    assert result.dead_letters == {"not_json": 1}
    assert query(settings, "SELECT count() FROM {db}.dead_letters") == [(1,)]
    assert kafka.commits == [{0: 2}]


def test_a_pass_records_its_plan_its_outcome_and_the_delivery_of_each_event(
    settings, kafka
) -> None:
    clicks = [click(position=i) for i in range(3)]
    first = batch_of(settings.kafka.topic, [*clicks[:2], b"not json"], partition=0, start=4)
    first.partitions[0].gaps = [(2, 4)]
    unmoved = PartitionRead(2, expected=7, end=7, next_offset=7)
    batch = merged(first, batch_of(settings.kafka.topic, clicks[2:], partition=1))
    batch.partitions[2] = unmoved
    kafka.batches = [batch]

    started = time.monotonic()
    result = run_pass(settings, REGISTRY)
    elapsed = time.monotonic() - started

    assert uuid.UUID(result.pass_id)
    assert (result.messages, result.rows, result.dead_letters) == (
        4, {"element_clicks": 3}, {"not_json": 1},
    )  # fmt: skip
    assert (result.committed, result.gaps, result.replayed) == ({0: 7, 1: 1}, [(0, 2, 4)], False)
    assert 0 < result.duration_s <= elapsed + 0.001 and elapsed - result.duration_s < 0.05
    assert kafka.reads == [
        (settings.kafka.topic, settings.etl.max_records, settings.etl.poll_timeout_s, {})
    ]
    [consumer] = kafka.consumers
    assert consumer.group == settings.etl.group and consumer.closed
    passes = query(
        settings,
        "SELECT pass_id, consumer_group, topic, status, messages, rows, dead_letters, replayed, "
        "started_at <= updated_at, duration_s >= 0 FROM {db}.etl_passes FINAL",
    )
    assert passes == [
        (
            uuid.UUID(result.pass_id), settings.etl.group, settings.kafka.topic, "loaded",
            4, 3, 1, 0, True, True,
        )
    ]  # fmt: skip
    offsets = query(
        settings,
        "SELECT pass_id, consumer_group, topic, partition, expected_offset, first_offset, "
        "last_offset, next_offset, end_offset, messages, gaps FROM {db}.etl_offsets "
        "ORDER BY partition",
    )
    plan = (uuid.UUID(result.pass_id), settings.etl.group, settings.kafka.topic)
    assert offsets == [(*plan, 0, 4, 4, 6, 7, 7, 3, [(2, 4)]), (*plan, 1, 0, 0, 0, 1, 1, 1, [])]
    deliveries = query(
        settings,
        "SELECT event_id, event, target_table, timestamp, topic, partition, offset, pass_id, "
        "loaded_at FROM {db}.event_deliveries ORDER BY partition, offset",
    )
    where = [(0, 4), (0, 5), (1, 0)]
    assert [row[:8] for row in deliveries] == [
        (
            uuid.UUID(m["event_id"]), "element_click", "element_clicks",
            datetime.fromisoformat(m["timestamp"].replace("Z", "")), settings.kafka.topic,
            partition, offset, uuid.UUID(result.pass_id),
        )
        for m, (partition, offset) in zip(clicks, where, strict=True)
    ]  # fmt: skip
    now = datetime.now(UTC).replace(tzinfo=None)
    assert all(abs((now - row[8]).total_seconds()) < 60 for row in deliveries)


def test_dead_letters_keep_the_records_key_bytes_and_reason(settings, kafka) -> None:
    batch = batch_of(settings.kafka.topic, [b"\xff{", b"[1]", click(position=-1), b"{}"])
    records = batch.records
    records[1] = Record(settings.kafka.topic, 0, 1, None, b"[1]", 0)  # no key
    records[3] = Record(settings.kafka.topic, 0, 3, b"k", None, 0)  # a tombstone
    kafka.batches = [batch]

    result = run_pass(settings, REGISTRY)

    letters = query(
        settings,
        "SELECT id, topic, partition, offset, hex(key), hex(payload), reason, detail != '' "
        "FROM {db}.dead_letters ORDER BY offset",
    )
    reasons = ["not_json", "not_an_object", "schema_invalid", "not_json"]
    assert letters == [
        (
            dead_letter_id(r), r.topic, 0, r.offset, (r.key or b"").hex().upper(),
            (r.value or b"").hex().upper(), reason, 1,
        )
        for r, reason in zip(records, reasons, strict=True)
    ]  # fmt: skip
    assert result.dead_letters == {"not_json": 2, "not_an_object": 1, "schema_invalid": 1}
    assert kafka.commits == [{0: 4}]


def test_a_pass_that_did_not_commit_is_replayed_and_stores_nothing_twice(settings, kafka) -> None:
    """The replay reads the same offsets, its records interleaved otherwise across partitions:
    each block, data or dead letters, gets the same token and ClickHouse drops it."""
    topic = settings.kafka.topic
    batch = merged(
        batch_of(topic, [click(), b"not json", click(), b"[]"], partition=0),
        batch_of(topic, [click(), b"{}", click()], partition=1),
    )
    kafka.batches = [
        batch,
        reordered(batch, key=lambda r: (r.offset, -r.partition)),
        batch_of(topic, [click()], partition=0, start=4),
    ]

    def crash(batch):
        raise ConnectionError("the broker went away before the commit")

    kafka.on_commit = crash
    with pytest.raises(ConnectionError):
        run_pass(settings, REGISTRY)
    kafka.on_commit = None
    replay = run_pass(settings, REGISTRY)
    after = run_pass(settings, REGISTRY)

    assert kafka.reads[1][3] == {0: (0, 4), 1: (0, 3)}
    assert (replay.replayed, after.replayed) == (True, False)
    assert query(settings, "SELECT count() FROM {db}.element_clicks") == [(5,)]
    assert query(settings, "SELECT count() FROM {db}.dead_letters") == [(3,)]
    assert kafka.commits == [{0: 4, 1: 3}, {0: 5}]
    assert query(settings, "SELECT replayed FROM {db}.etl_passes FINAL ORDER BY replayed") == [
        (0,), (0,), (1,),
    ]  # fmt: skip


def test_the_plan_of_a_pass_covers_only_the_partitions_it_moved(settings, kafka) -> None:
    batch = batch_of(settings.kafka.topic, [click(), click()])
    batch.partitions[1] = PartitionRead(1, expected=5, end=5, next_offset=5)
    kafka.batches = [batch, batch_of(settings.kafka.topic, [click()], start=2)]

    run_pass(settings, REGISTRY)
    run_pass(settings, REGISTRY)

    # A plan for partition 1 would make the next pass stop reading it at offset 5.
    assert kafka.reads[1][3] == {0: (0, 2)}


def test_a_row_its_table_refuses_is_dead_lettered_and_the_rest_of_its_block_loads(
    settings, kafka, inserts
) -> None:
    messages = [rating(4), rating(300), rating(5), click()]
    batch = batch_of(settings.kafka.topic, messages)
    by_event_id = {
        uuid.UUID(m["event_id"]): r for m, r in zip(messages, batch.records, strict=True)
    }
    kafka.batches = [batch]

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
    assert kafka.commits == [{0: 4}]
    # the rows retried one by one carry the tokens of their own one-row blocks
    for table, columns, rows, insert_settings in inserts:
        if table in ("test_ratings", "element_clicks"):
            records = [by_event_id[row[columns.index("event_id")]] for row in rows]
            expected = insert_token(settings.kafka.topic, table, columns, 0, (0, 4), records)
            assert insert_settings["insert_deduplication_token"] == expected


def test_a_refused_rows_detail_is_cut_to_2000_characters(settings, kafka, inserts) -> None:
    def refuse(table, rows):
        return ValueError("x" * 5000) if table == "element_clicks" else None

    inserts.refuse = refuse
    kafka.batches = [batch_of(settings.kafka.topic, [click()])]

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
    settings, kafka, inserts, refusals
) -> None:
    refusals = list(refusals)

    def refuse(table, rows):
        return refusals.pop(0) if table == "element_clicks" and refusals else None

    inserts.refuse = refuse
    kafka.batches = [batch_of(settings.kafka.topic, [click(), click()])]

    with pytest.raises(OperationalError):
        run_pass(settings, REGISTRY)

    assert kafka.commits == []
    assert kafka.consumers[0].closed
    assert query(settings, "SELECT count() FROM {db}.dead_letters") == [(0,)]
    assert query(settings, "SELECT status FROM {db}.etl_passes FINAL") == [("planned",)]


def test_a_pass_with_nothing_new_writes_and_commits_nothing(settings, kafka) -> None:
    empty = batch_of(settings.kafka.topic, [], start=3)
    kafka.batches = [empty]

    result = run_pass(settings, REGISTRY)

    assert (result.messages, result.rows, result.committed, kafka.commits) == (0, {}, {}, [])
    assert query(settings, "SELECT count() FROM {db}.etl_passes") == [(0,)]


def test_a_table_needing_a_migration_stops_the_pass_before_it_reads(settings, kafka) -> None:
    changed = RATINGS_DDL.replace("ORDER BY (stars, event_id)", "ORDER BY (event_id, stars)")
    kafka.batches = [batch_of(settings.kafka.topic, [rating(4)])]
    run_pass(settings, RATED)
    other = build_registry(make_plugin_manager(extra_plugins=[RatingPlugin(changed)]))

    with pytest.raises(MigrationNeededError, match="test_ratings.*clickstream migrate"):
        run_pass(settings, other)

    assert (len(kafka.reads), len(kafka.consumers)) == (1, 1)


def test_after_insert_runs_once_the_rows_are_stored_and_before_the_commit(settings, kafka) -> None:
    seen = []
    kafka.batches = [batch_of(settings.kafka.topic, [click(), click()])]

    def after_insert():
        seen.append((query(settings, "SELECT count() FROM {db}.element_clicks"), kafka.commits[:]))

    run_pass(settings, REGISTRY, after_insert=after_insert)

    assert seen == [([(2,)], [])]
    assert kafka.commits == [{0: 2}]


def test_a_pass_logs_its_result_and_each_event_with_the_pass_id(settings, kafka, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="etl")
    batch = batch_of(settings.kafka.topic, [click(), b"not json", click()])
    batch.partitions[0].gaps = [(7, 8)]
    kafka.batches = [batch]

    result = run_pass(settings, REGISTRY)

    [line] = [r for r in caplog.records if hasattr(r, "etl_pass")]
    assert line.etl_pass == {
        "pass_id": result.pass_id,
        "messages": 3,
        "rows": {"element_clicks": 2},
        "dead_letters": {"not_json": 1},
        "gaps": [(0, 7, 8)],
        "replayed": False,
        "duration_s": result.duration_s,
    }
    events = [r for r in caplog.records if r.name == "etl.events"]
    assert sorted((r.levelname, r.offset, r.pass_id) for r in events) == [
        ("DEBUG", 0, result.pass_id), ("DEBUG", 2, result.pass_id), ("INFO", 1, result.pass_id),
    ]  # fmt: skip


def test_dead_letters_of_two_topics_at_the_same_offsets_are_both_kept(settings, kafka) -> None:
    """The dead letters' insert token names the topic: two topics loading into one database
    may fail at the same partition and offset, and neither may drop the other's."""
    other = settings.replace(kafka_topic=settings.kafka.topic + "-other")
    kafka.batches = [batch_of(settings.kafka.topic, [b"not json"])]
    run_pass(settings, REGISTRY)
    kafka.batches = [batch_of(other.kafka.topic, [b"not json either"])]
    run_pass(other, REGISTRY)
    assert query(settings, "SELECT topic FROM {db}.dead_letters ORDER BY topic") == [
        (settings.kafka.topic,),
        (other.kafka.topic,),
    ]
