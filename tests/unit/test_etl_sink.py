"""The ETL's sink and commit path on the real ClickHouse engine (chDB, in-process), with
Kafka's consumer replaced: what is inserted, with which deduplication token, and when
offsets are committed.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import orjson
import pytest

import etl.runner
from core.host.plugin_manager import build_registry, make_plugin_manager
from etl.consume import Batch, PartitionRead, Record
from etl.runner import run_pass
from etl.sink import insert_token
from etl.warehouse import WarehouseError
from tests.etl_helpers import envelope, query

REGISTRY = build_registry(make_plugin_manager())
DATA_TABLES = {event_type.table for event_type in REGISTRY}


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


class FakeConsumer:
    def close(self) -> None:
        pass


@pytest.fixture
def kafka(monkeypatch):
    """Stands in for the consumer: ``kafka.batches`` are read in turn, commits are recorded."""

    class Kafka:
        batches: list[Batch] = []
        commits: list[dict[int, int]] = []
        on_commit = None

    def read_batch(consumer, topic, max_records, poll_timeout_s, replay):
        return Kafka.batches.pop(0)

    def commit(consumer, batch):
        if Kafka.on_commit is not None:
            Kafka.on_commit(batch)
        Kafka.commits.append(batch.to_commit)

    monkeypatch.setattr(etl.runner, "open_consumer", lambda settings: FakeConsumer())
    monkeypatch.setattr(etl.runner, "read_batch", read_batch)
    monkeypatch.setattr(etl.runner, "commit", commit)
    return Kafka


@pytest.fixture
def inserts(monkeypatch):
    """Every ``client.insert`` of a pass: (table, column names, rows, settings)."""
    seen: list[tuple[str, list[str], list[list], dict]] = []
    real_session = etl.runner.Warehouse.session

    @contextmanager
    def recording_session(self):
        with real_session(self) as client:
            real_insert = client.insert

            def insert(table, data, column_names=None, settings=None, **kwargs):
                row = (table.split(".")[-1], list(column_names), list(data), dict(settings or {}))
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
        envelope("video_complete", {"video_id": "tt0111161", "duration_total": True})
    ]
    batch = batch_of(settings.kafka_topic, messages)
    by_event_id = {
        uuid.UUID(m["event_id"]): r for m, r in zip(messages, batch.records, strict=True)
    }
    kafka.batches = [batch]

    run_pass(settings, REGISTRY)

    data_inserts = [i for i in inserts if i[0] in DATA_TABLES]
    assert {table for table, *_ in data_inserts} == {"element_clicks", "video_completes"}
    for table, columns, rows, insert_settings in data_inserts:
        records = [by_event_id[row[columns.index("event_id")]] for row in rows]
        expected = insert_token(settings.kafka_topic, table, columns, records)
        assert insert_settings["insert_deduplication_token"] == expected


def test_a_replay_of_the_same_offsets_is_dropped_even_if_its_bytes_differ(settings, kafka) -> None:
    first = click(position=1)
    # The same offsets read again, their row now different: say the plugin's mapper changed
    # between the crash and the replay. ClickHouse's own hash of the block would not match.
    again = {**first, "data": {**first["data"], "position": 2}}
    kafka.batches = [
        batch_of(settings.kafka_topic, [first]),
        batch_of(settings.kafka_topic, [again]),
    ]

    run_pass(settings, REGISTRY)
    run_pass(settings, REGISTRY)

    assert query(settings, "SELECT count() FROM {db}.element_clicks") == [(1,)]


def test_offsets_are_committed_only_once_the_rows_are_stored(settings, kafka) -> None:
    stored_at_commit: list[int] = []
    kafka.on_commit = lambda batch: stored_at_commit.append(
        query(settings, "SELECT count() FROM {db}.element_clicks")[0][0]
    )
    kafka.batches = [batch_of(settings.kafka_topic, [click(), click(), click()])]

    run_pass(settings, REGISTRY)

    assert stored_at_commit == [3]
    assert kafka.commits == [{0: 3}]


def test_a_pass_whose_load_fails_commits_nothing(settings, kafka, monkeypatch) -> None:
    def failing_load(*args, **kwargs):
        raise WarehouseError("the warehouse went away")

    monkeypatch.setattr(etl.runner, "_load", failing_load)
    kafka.batches = [batch_of(settings.kafka_topic, [click()])]

    with pytest.raises(WarehouseError):
        run_pass(settings, REGISTRY)
    assert kafka.commits == []


def test_a_bad_message_is_dead_lettered_and_still_committed_past(settings, kafka) -> None:
    kafka.batches = [batch_of(settings.kafka_topic, [b"not json", click()])]

    result = run_pass(settings, REGISTRY)

    assert result.rows == {"element_clicks": 1}
    assert result.dead_letters == {"not_json": 1}
    assert query(settings, "SELECT count() FROM {db}.dead_letters") == [(1,)]
    assert kafka.commits == [{0: 2}]
