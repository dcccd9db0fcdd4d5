"""Kafka transport of a pass: read up to the end offsets seen at the start, then commit.

The ETL assigns itself every partition of the topic and stores offsets under its
consumer group (``etl_group``). It does not join the group as a member: a pass is a
short batch job, and joining would cost a rebalance on every pass. Run one ETL per group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kafka import KafkaConsumer
from kafka.structs import OffsetAndMetadata, TopicPartition

from core.config import EtlSettings, KafkaSettings

#: Empty polls in a row after which a pass stops reading and loads what it has.
IDLE_POLLS = 3


@dataclass(frozen=True)
class Record:
    """One Kafka record, transport only: where it came from and its bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


@dataclass
class PartitionRead:
    """What a pass read from one partition."""

    partition: int
    expected: int
    end: int
    offsets: list[int] = field(default_factory=list)
    next_offset: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)

    @property
    def first(self) -> int | None:
        return self.offsets[0] if self.offsets else None

    @property
    def last(self) -> int | None:
        return self.offsets[-1] if self.offsets else None


@dataclass
class Batch:
    """The records of one pass and, per partition, the offsets read and to commit."""

    topic: str
    records: list[Record]
    partitions: dict[int, PartitionRead]

    @property
    def to_commit(self) -> dict[int, int]:
        return {
            p.partition: p.next_offset
            for p in self.partitions.values()
            if p.next_offset > p.expected
        }


def open_consumer(kafka: KafkaSettings, etl: EtlSettings) -> KafkaConsumer:
    """A consumer of the ETL's group with manual commits, assigned to no partition yet."""
    return KafkaConsumer(
        bootstrap_servers=kafka.bootstrap.split(","),
        group_id=etl.group,
        client_id="clickstream-etl",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=min(etl.max_records, 5000),
        request_timeout_ms=int(max(kafka.ack_timeout_s, 5) * 1000) + 1000,
    )


def committed_offsets(consumer: KafkaConsumer, topic: str) -> dict[int, int | None]:
    """The group's committed offset per partition of ``topic`` (None: never committed)."""
    partitions = consumer.partitions_for_topic(topic) or set()
    return {p: consumer.committed(TopicPartition(topic, p)) for p in sorted(partitions)}


def end_offsets(consumer: KafkaConsumer, topic: str) -> dict[int, int]:
    """The high-water mark per partition of ``topic``."""
    partitions = [
        TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}


def read_batch(
    consumer: KafkaConsumer,
    topic: str,
    max_records: int,
    poll_timeout_s: float,
    replay: Mapping[int, tuple[int, int]] | None = None,
) -> Batch:
    """Read every record up to the end offsets captured now, at most ``max_records``.

    ``replay`` maps a partition to (start, stop) of an earlier pass that loaded
    but did not commit: if the group is still at ``start``, this pass stops at
    ``stop`` so it re-reads exactly that pass's records (and its insert tokens match).
    """
    committed = committed_offsets(consumer, topic)
    tps = [TopicPartition(topic, p) for p in committed]
    batch = Batch(topic=topic, records=[], partitions={})
    if not tps:
        return batch
    consumer.assign(tps)
    ends = consumer.end_offsets(tps)
    beginnings = consumer.beginning_offsets(tps)
    for tp in tps:
        expected = committed[tp.partition] or 0
        stop = ends[tp]
        planned = (replay or {}).get(tp.partition)
        if planned and planned[0] == expected:
            stop = min(stop, planned[1])
        batch.partitions[tp.partition] = PartitionRead(
            partition=tp.partition, expected=expected, end=stop, next_offset=expected
        )
    pending = {tp for tp in tps if consumer.position(tp) < batch.partitions[tp.partition].end}
    idle = 0
    while pending and len(batch.records) < max_records and idle < IDLE_POLLS:
        polled = consumer.poll(
            timeout_ms=int(poll_timeout_s * 1000), max_records=max_records - len(batch.records)
        )
        idle = 0 if polled else idle + 1
        for tp, messages in polled.items():
            read = batch.partitions[tp.partition]
            for message in messages:
                if message.offset >= read.end or len(batch.records) >= max_records:
                    break
                read.offsets.append(message.offset)
                batch.records.append(
                    Record(
                        topic=topic,
                        partition=tp.partition,
                        offset=message.offset,
                        key=message.key,
                        value=message.value,
                        timestamp_ms=message.timestamp,
                    )
                )
        pending = {
            tp
            for tp in pending
            if consumer.position(tp) < batch.partitions[tp.partition].end
            and not _past_end(batch.partitions[tp.partition])
        }
    for tp in tps:
        _settle(batch.partitions[tp.partition], beginnings[tp])
    return batch


def _past_end(read: PartitionRead) -> bool:
    return bool(read.offsets) and read.offsets[-1] + 1 >= read.end


def _settle(read: PartitionRead, beginning: int) -> None:
    """Work out the offset to commit and the offset ranges that were expected but missing."""
    read.next_offset = read.expected
    if read.offsets:
        cursor = read.expected
        for offset in read.offsets:
            if offset > cursor:
                read.gaps.append((cursor, offset))
            cursor = offset + 1
        read.next_offset = cursor
    elif read.expected < beginning <= read.end:
        # Retention deleted records the group never read: the consumer resets to the beginning.
        read.gaps.append((read.expected, beginning))
        read.next_offset = beginning


def commit(consumer: KafkaConsumer, batch: Batch) -> None:
    """Commit the next offset of every partition the pass moved forward."""
    offsets = {
        TopicPartition(batch.topic, partition): OffsetAndMetadata(offset, "", -1)
        for partition, offset in batch.to_commit.items()
    }
    if offsets:
        consumer.commit(offsets)
