"""What a pass records (``etl.ledger``): its plan, its outcome, the delivery of each event and
its dead letters. On the real ClickHouse engine (chDB, in-process), with Kafka's consumer
replaced."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from core.host.plugin_manager import build_registry, make_plugin_manager
from etl.consume import PartitionRead, Record
from etl.ledger import dead_letter_id
from etl.runner import run_pass
from tests.etl_helpers import batch_of, click, merged, query

REGISTRY = build_registry(make_plugin_manager())


def test_a_pass_records_its_plan_its_outcome_and_the_delivery_of_each_event(
    settings, etl_kafka
) -> None:
    clicks = [click(position=i) for i in range(3)]
    first = batch_of(settings.kafka.topic, [*clicks[:2], b"not json"], partition=0, start=4)
    first.partitions[0].gaps = [(2, 4)]
    unmoved = PartitionRead(2, expected=7, end=7, next_offset=7)
    batch = merged(first, batch_of(settings.kafka.topic, clicks[2:], partition=1))
    batch.partitions[2] = unmoved
    etl_kafka.batches = [batch]

    started = time.monotonic()
    result = run_pass(settings, REGISTRY)
    elapsed = time.monotonic() - started

    assert uuid.UUID(result.pass_id)
    assert (result.messages, result.rows, result.dead_letters) == (
        4, {"element_clicks": 3}, {"not_json": 1},
    )  # fmt: skip
    assert (result.committed, result.gaps, result.replayed) == ({0: 7, 1: 1}, [(0, 2, 4)], False)
    assert 0 < result.duration_s <= elapsed + 0.001 and elapsed - result.duration_s < 0.05
    assert etl_kafka.reads == [
        (settings.kafka.topic, settings.etl.max_records, settings.etl.poll_timeout_s, {})
    ]
    [consumer] = etl_kafka.consumers
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


def test_dead_letters_keep_the_records_key_bytes_and_reason(settings, etl_kafka) -> None:
    batch = batch_of(settings.kafka.topic, [b"\xff{", b"[1]", click(position=-1), b"{}"])
    records = batch.records
    records[1] = Record(settings.kafka.topic, 0, 1, None, b"[1]", 0)  # no key
    records[3] = Record(settings.kafka.topic, 0, 3, b"k", None, 0)  # a tombstone
    etl_kafka.batches = [batch]

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
    assert etl_kafka.commits == [{0: 4}]


def test_the_plan_of_a_pass_covers_only_the_partitions_it_moved(settings, etl_kafka) -> None:
    batch = batch_of(settings.kafka.topic, [click(), click()])
    batch.partitions[1] = PartitionRead(1, expected=5, end=5, next_offset=5)
    etl_kafka.batches = [batch, batch_of(settings.kafka.topic, [click()], start=2)]

    run_pass(settings, REGISTRY)
    run_pass(settings, REGISTRY)

    # A plan for partition 1 would make the next pass stop reading it at offset 5.
    assert etl_kafka.reads[1][3] == {0: (0, 2)}


def test_dead_letters_of_two_topics_at_the_same_offsets_are_both_kept(settings, etl_kafka) -> None:
    """The dead letters' insert token names the topic: two topics loading into one database
    may fail at the same partition and offset, and neither may drop the other's."""
    other = settings.replace(kafka_topic=settings.kafka.topic + "-other")
    etl_kafka.batches = [batch_of(settings.kafka.topic, [b"not json"])]
    run_pass(settings, REGISTRY)
    etl_kafka.batches = [batch_of(other.kafka.topic, [b"not json either"])]
    run_pass(other, REGISTRY)
    assert query(settings, "SELECT topic FROM {db}.dead_letters ORDER BY topic") == [
        (settings.kafka.topic,),
        (other.kafka.topic,),
    ]
