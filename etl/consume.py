"""Kafka transport of a pass: the ETL's member of its consumer group reads the partitions the
group gave it, up to the end offsets seen at the start of the pass, and commits only those.

Partitions wait paused between passes; a pass resumes the ones it plans to read. A
rebalance happens only inside ``poll``, so only while a pass reads, before anything is
loaded: the records of a partition revoked then are dropped (the new owner reads them
from the committed offset). Once reading is over a pass no longer polls, so it loads
and commits its block before its member takes part in the next rebalance.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import kafka.structs
from kafka import KafkaConsumer
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata, TopicPartition

from core.config import EtlSettings, KafkaSettings

log = logging.getLogger(__name__)

#: Empty polls in a row after which a pass stops reading and loads what it has (not a replay).
IDLE_POLLS = 3

#: How long a pass waits, beyond the session timeout, for the group to give it partitions.
JOIN_MARGIN_S = 5.0


class ReplayIncompleteError(RuntimeError):
    """A replay could not read all of the crashed pass's range in time: it loads nothing."""


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
    """What a pass read from one partition.

    ``exact``: the range ``[expected, end)`` is a crashed pass's, to be read whole or not
    at all. ``rewound_from``: the group's committed offset, when it was above the log's end
    (a truncated or recreated log); the pass then read from the log's beginning.
    """

    partition: int
    expected: int
    end: int
    offsets: list[int] = field(default_factory=list)
    next_offset: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)
    exact: bool = False
    rewound_from: int | None = None

    @property
    def first(self) -> int | None:
        return self.offsets[0] if self.offsets else None

    @property
    def last(self) -> int | None:
        return self.offsets[-1] if self.offsets else None

    @property
    def moved(self) -> bool:
        """True if the pass has an offset to commit here."""
        return self.next_offset > self.expected or self.rewound_from is not None


@dataclass
class Batch:
    """The records of one pass and, per partition, the offsets read and to commit."""

    topic: str
    records: list[Record]
    partitions: dict[int, PartitionRead]

    @property
    def to_commit(self) -> dict[int, int]:
        return {p.partition: p.next_offset for p in self.partitions.values() if p.moved}

    @property
    def replayed(self) -> bool:
        return any(p.exact and p.offsets for p in self.partitions.values())

    def drop(self, partitions: set[int]) -> None:
        """Forget what was read from ``partitions`` (revoked while the pass read)."""
        self.records = [r for r in self.records if r.partition not in partitions]
        for partition in partitions:
            self.partitions.pop(partition, None)


def open_consumer(kafka: KafkaSettings, etl: EtlSettings, **config) -> KafkaConsumer:
    """A consumer of the ETL's group with manual commits, assigned to no partition yet;
    ``config`` adds to (or overrides) the consumer's settings."""
    settings = {
        "bootstrap_servers": kafka.bootstrap.split(","),
        "group_id": etl.group,
        "client_id": "clickstream-etl",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": min(etl.max_records, etl.max_poll_records),
        "max_partition_fetch_bytes": etl.max_partition_fetch_bytes,
        "fetch_max_bytes": etl.fetch_max_bytes,
        "request_timeout_ms": int(max(kafka.ack_timeout_s, 5) * 1000) + 1000,
    }
    return KafkaConsumer(**{**settings, **config})


class Member:
    """The ETL's member of its consumer group: subscribed to the topic, it reads and commits
    the partitions the group assigns it, and no other."""

    def __init__(self, consumer: KafkaConsumer, topic: str, join_timeout_s: float = 15.0) -> None:
        """``join_timeout_s``: how long :meth:`join` waits for the group's assignment; more
        than the session timeout, so that a pass waits out a dead member's."""
        self.consumer = consumer
        self.topic = topic
        self.join_timeout_s = join_timeout_s
        #: Partitions revoked (or lost) since the pass in progress started reading.
        self.revoked: set[int] = set()
        consumer.subscribe([topic], listener=_Listener(self))

    def owned(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment() if tp.topic == self.topic}

    def join(self) -> set[int]:
        """Take part in any rebalance due, and wait until the group's assignment is settled
        (fetching nothing: new partitions are paused); the partitions owned then, none if
        the topic does not exist yet."""
        if not self.consumer.partitions_for_topic(self.topic):
            return set()
        deadline = time.monotonic() + self.join_timeout_s
        self.consumer.poll(timeout_ms=100, max_records=1)
        while not self._stable() and time.monotonic() < deadline:
            self.consumer.poll(timeout_ms=100, max_records=1)
        return self.owned()

    def _stable(self) -> bool:
        state = getattr(kafka.structs, "MemberState", None)
        if state is None:  # kafka-python before 3 tells no member state
            return bool(self.consumer.assignment())
        return self.consumer.group_metadata().state == state.STABLE

    def close(self) -> None:
        """Leave the group (a static member stays until its session times out)."""
        self.consumer.close(autocommit=False, timeout_ms=3000)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, member: Member) -> None:
        self.member = member

    def on_partitions_revoked(self, revoked) -> None:
        self.member.revoked |= {tp.partition for tp in revoked}

    def on_partitions_assigned(self, assigned) -> None:
        # Nothing is fetched from a partition before a pass plans to read it.
        if assigned:
            self.member.consumer.pause(*assigned)

    def on_partitions_lost(self, lost) -> None:
        self.on_partitions_revoked(lost)


def join_group(kafka: KafkaSettings, etl: EtlSettings) -> Member:
    """The ETL's member of its group; ``etl_instance_id`` makes it a static member."""
    session_ms = int(etl.session_timeout_s * 1000)
    # kafka-python 2 wants requests to time out after the session.
    request_ms = max(int(max(kafka.ack_timeout_s, 5) * 1000) + 1000, session_ms + 1000)
    config: dict = {"session_timeout_ms": session_ms, "request_timeout_ms": request_ms}
    if etl.instance_id:
        config["group_instance_id"] = etl.instance_id
    consumer = open_consumer(kafka, etl, **config)
    return Member(consumer, kafka.topic, etl.session_timeout_s + JOIN_MARGIN_S)


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
    member: Member,
    topic: str,
    max_records: int,
    poll_timeout_s: float,
    replay: Mapping[int, tuple[int, int]] | None = None,
    replay_timeout_s: float = 30.0,
) -> Batch:
    """Read the member's partitions up to the end offsets captured now, at most ``max_records``.

    ``replay`` maps a partition to (start, stop) of an earlier pass that loaded but may not
    have committed. If the group is still at ``start`` of one of the member's partitions,
    this pass is a replay: it reads exactly ``[start, stop)`` there, whatever the record
    cap, and nothing new anywhere else, so that each block it inserts is the crashed pass's
    again and carries the same token. A replay that has not read its ranges whole within
    ``replay_timeout_s`` raises :class:`ReplayIncompleteError`: a partial range would be a
    new block, stored twice.
    """
    consumer = member.consumer
    owned = sorted(member.join())
    member.revoked.clear()
    batch = Batch(topic=topic, records=[], partitions={})
    if not owned:
        return batch
    tps = [TopicPartition(topic, p) for p in owned]
    committed = {tp.partition: consumer.committed(tp) for tp in tps}
    ends = consumer.end_offsets(tps)
    beginnings = consumer.beginning_offsets(tps)
    starts = {
        tp.partition: _start(tp.partition, committed[tp.partition], beginnings[tp], ends[tp])
        for tp in tps
    }
    replay = {p: r for p, r in (replay or {}).items() if p in starts and r[1] > r[0]}
    replaying = any(starts[p] == (start, None) for p, (start, _) in replay.items())
    for tp in tps:
        expected, rewound_from = starts[tp.partition]
        read = PartitionRead(
            tp.partition, expected, end=ends[tp], next_offset=expected, rewound_from=rewound_from
        )
        if replaying:
            _cap(read, replay.get(tp.partition), beginnings[tp])
        batch.partitions[tp.partition] = read
        consumer.seek(tp, read.expected)
    try:
        _read(member, batch, max_records, poll_timeout_s, replaying, replay_timeout_s)
    finally:
        consumer.pause(*[tp for tp in consumer.assignment() if tp.topic == topic])
    for read in batch.partitions.values():
        _settle(read, beginnings[TopicPartition(topic, read.partition)])
    return batch


def _start(
    partition: int, committed: int | None, beginning: int, end: int
) -> tuple[int, int | None]:
    """Where a pass starts reading a partition, and the committed offset it rewound from."""
    if committed is None:
        return beginning, None  # a group that never committed expected nothing before it
    if committed > end:
        log.warning(
            "etl.offset_rewound partition=%s committed=%s log_end=%s: the log was truncated "
            "or recreated, reading it again from %s",
            partition, committed, end, beginning,
        )  # fmt: skip
        return beginning, committed
    return committed, None


def _cap(read: PartitionRead, planned: tuple[int, int] | None, beginning: int) -> None:
    """In a replay: the crashed pass's exact range where there is one, nothing new elsewhere."""
    if planned is None or planned[0] != read.expected or read.rewound_from is not None:
        read.end = read.expected
    elif beginning <= planned[0]:
        read.end, read.exact = min(planned[1], read.end), True
    else:
        log.warning(
            "etl.replay_impossible partition=%s range=%s..%s beginning=%s: retention deleted "
            "part of it; its surviving rows may be stored twice",
            read.partition, planned[0], planned[1], beginning,
        )  # fmt: skip
        read.end = min(planned[1], read.end)


def _read(
    member: Member,
    batch: Batch,
    max_records: int,
    poll_timeout_s: float,
    replaying: bool,
    replay_timeout_s: float,
) -> None:
    consumer = member.consumer
    pending = {
        TopicPartition(batch.topic, p.partition)
        for p in batch.partitions.values()
        if p.expected < p.end
    }
    consumer.resume(*pending)
    deadline = time.monotonic() + replay_timeout_s
    idle = 0
    while pending:
        if replaying and time.monotonic() >= deadline:
            raise ReplayIncompleteError(
                f"the replay of {batch.topic} read {len(batch.records)} records in "
                f"{replay_timeout_s:g} s, not all of its ranges: nothing loaded, the next "
                "pass tries again"
            )
        if not replaying and (len(batch.records) >= max_records or idle >= IDLE_POLLS):
            break
        room = max_records - len(batch.records) if not replaying else max_records
        polled = consumer.poll(timeout_ms=int(poll_timeout_s * 1000), max_records=max(room, 1))
        idle = 0 if polled else idle + 1
        if member.revoked:
            # Revoked before anything was loaded: the new owner reads these records again.
            log.info("etl.partitions_revoked partitions=%s", sorted(member.revoked))
            batch.drop(member.revoked)
            pending = {tp for tp in pending if tp.partition not in member.revoked}
        for tp, messages in polled.items():
            read = batch.partitions.get(tp.partition)
            if read is None:
                continue
            for message in messages:
                if message.offset >= read.end:
                    break
                if not replaying and len(batch.records) >= max_records:
                    break
                read.offsets.append(message.offset)
                batch.records.append(
                    Record(
                        topic=batch.topic,
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
            if tp.partition in batch.partitions
            and consumer.position(tp) < batch.partitions[tp.partition].end
            and not _past_end(batch.partitions[tp.partition])
        }


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


def commit(member: Member, batch: Batch) -> dict[int, int]:
    """Commit the next offset of every partition the pass moved and the member still owns;
    the offsets committed. A partition the group moved meanwhile is left to its new owner."""
    owned = member.owned() - member.revoked
    offsets = {
        TopicPartition(batch.topic, partition): OffsetAndMetadata(offset, "", -1)
        for partition, offset in batch.to_commit.items()
        if partition in owned
    }
    skipped = set(batch.to_commit) - owned
    if skipped:
        log.warning("etl.commit_skipped partitions=%s: no longer this member's", sorted(skipped))
    if offsets:
        member.consumer.commit(offsets)
    return {tp.partition: o.offset for tp, o in offsets.items()}
