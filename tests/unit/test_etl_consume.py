"""The ETL's Kafka side with the consumer replaced: what a pass reads, up to where, the gaps it
finds and the offsets it commits.
"""

from __future__ import annotations

from collections import namedtuple
from types import SimpleNamespace

import pytest
from kafka.structs import MemberState, OffsetAndMetadata, TopicPartition

import etl.consume
from etl.consume import (
    IDLE_POLLS,
    Member,
    PartitionRead,
    Record,
    ReplayIncompleteError,
    _settle,
    commit,
    committed_offsets,
    end_offsets,
    open_consumer,
    read_batch,
)

TOPIC = "events"
Message = namedtuple("Message", "offset key value timestamp")


def message(partition: int, offset: int) -> Message:
    return Message(
        offset, f"k{partition}".encode(), f"v{partition}:{offset}".encode(), 1000 + offset
    )


def record(partition: int, offset: int) -> Record:
    m = message(partition, offset)
    return Record(TOPIC, partition, offset, m.key, m.value, m.timestamp)


class FakeConsumer:
    """Stands in for ``kafka.KafkaConsumer`` on one topic.

    ``logs`` holds the offsets present per partition (a missing one is a gap); ``ends`` the
    end offsets the broker reports (default: after the last offset; records past it are ones
    that arrive during the pass). A poll returns at most ``per_poll`` records per partition,
    and nothing at all for each ``True`` still in ``empty_polls``. With ``markers_at_end``
    the offsets missing at the end of a partition are control records (a transaction's
    commit marker): once past the last record, the position moves on to the end, as Kafka's.
    ``subscribe`` gives it every partition at once (a group of one); ``polls`` has the polls
    that could fetch something, not those made while every partition was paused.
    """

    def __init__(
        self,
        logs: dict[int, list[int]],
        committed: dict[int, int] | None = None,
        ends: dict[int, int] | None = None,
        beginnings: dict[int, int] | None = None,
        per_poll: int = 1000,
        empty_polls: list[bool] | None = None,
        markers_at_end: bool = False,
    ) -> None:
        self.logs = logs
        self.committed_by_partition = committed or {}
        self.beginnings = {p: (beginnings or {}).get(p, 0) for p in logs}
        self.ends = {
            p: (ends or {}).get(p, max(offsets, default=self.beginnings[p] - 1) + 1)
            for p, offsets in logs.items()
        }
        self.per_poll = per_poll
        self.empty_polls = list(empty_polls or [])
        self.markers_at_end = markers_at_end
        self.positions: dict[TopicPartition, int] = {}
        self.paused: set[TopicPartition] = set()
        self.polls: list[dict] = []
        self.commits: list[dict] = []

    def subscribe(self, topics: list[str], listener) -> None:
        [topic] = topics
        if topic == TOPIC:
            tps = [TopicPartition(TOPIC, p) for p in self.logs]
            self.assign(tps)
            self.listener = listener
            listener.on_partitions_assigned(set(tps))

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    def group_metadata(self):
        return SimpleNamespace(state=MemberState.STABLE)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused |= set(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused -= set(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._check(tp)
        self.positions[tp] = offset

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(self.logs) if topic == TOPIC else None

    def committed(self, tp: TopicPartition) -> int | None:
        self._check(tp)
        return self.committed_by_partition.get(tp.partition)

    def assign(self, tps: list[TopicPartition]) -> None:
        for tp in tps:
            self._check(tp)
            committed = self.committed(tp)
            beginning = self.beginnings[tp.partition]
            # auto_offset_reset="earliest": no committed offset, or one retention deleted
            self.positions[tp] = (
                beginning if committed is None or committed < beginning else committed
            )

    def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[self._check(tp)] for tp in tps}

    def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.beginnings[self._check(tp)] for tp in tps}

    def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict:
        # kafka-python's own checks
        if not isinstance(timeout_ms, int) or timeout_ms < 0:
            raise ValueError("timeout_ms must be a non-negative integer")
        if not isinstance(max_records, int) or max_records <= 0:
            raise ValueError("max_records must be positive")
        if not set(self.positions) - self.paused:
            return {}
        self.polls.append({"timeout_ms": timeout_ms, "max_records": max_records})
        if self.empty_polls and self.empty_polls.pop(0):
            return {}
        left = max_records
        polled = {}
        for tp, position in self.positions.items():
            if tp in self.paused:
                continue
            offsets = [o for o in self.logs[tp.partition] if o >= position]
            offsets = offsets[: min(self.per_poll, left)]
            if offsets:
                polled[tp] = [message(tp.partition, o) for o in offsets]
                self.positions[tp] = offsets[-1] + 1
                left -= len(offsets)
            rest = [o for o in self.logs[tp.partition] if o >= self.positions[tp]]
            if self.markers_at_end and not rest:
                self.positions[tp] = max(self.positions[tp], self.ends[tp.partition])
        return polled

    def _check(self, tp: TopicPartition) -> int:
        assert tp.topic == TOPIC, f"{tp} is not a partition of {TOPIC}"
        return tp.partition

    def commit(self, offsets: dict) -> None:
        self.commits.append(offsets)


def read(consumer: FakeConsumer, max_records: int = 100, replay=None):
    return read_batch(Member(consumer, TOPIC), TOPIC, max_records, 1.5, replay)


def test_a_pass_reads_from_the_committed_offset_up_to_the_end_seen_at_its_start() -> None:
    consumer = FakeConsumer(
        # partition 0: offsets 5 and 6 arrive during the pass; partition 1: a new group
        {0: list(range(7)), 1: [0, 1, 2]},
        committed={0: 2},
        ends={0: 5},
        per_poll=1,
    )

    batch = read(consumer)

    assert sorted(batch.records, key=lambda r: (r.partition, r.offset)) == [
        record(0, 2), record(0, 3), record(0, 4), record(1, 0), record(1, 1), record(1, 2),
    ]  # fmt: skip
    assert batch.topic == TOPIC
    assert batch.to_commit == {0: 5, 1: 3}
    first, second = batch.partitions[0], batch.partitions[1]
    assert (first.expected, first.end, first.offsets, first.gaps) == (2, 5, [2, 3, 4], [])
    assert (second.expected, second.end, second.offsets, second.gaps) == (0, 3, [0, 1, 2], [])
    assert (first.first, first.last, second.first, second.last) == (2, 4, 0, 2)
    assert all(poll["timeout_ms"] == 1500 for poll in consumer.polls)


def test_a_pass_reads_at_most_max_records_and_commits_only_what_it_read() -> None:
    consumer = FakeConsumer({0: list(range(5)), 1: list(range(5))}, committed={1: 1}, per_poll=2)

    batch = read(consumer, max_records=5)

    assert len(batch.records) == 5
    read_offsets = {p: [r.offset for r in batch.records if r.partition == p] for p in (0, 1)}
    assert batch.to_commit == {p: offsets[-1] + 1 for p, offsets in read_offsets.items()}
    assert all(poll["max_records"] <= 5 for poll in consumer.polls)


def test_a_pass_with_nothing_new_does_not_wait_for_kafka_and_commits_nothing() -> None:
    consumer = FakeConsumer({0: [0, 1, 2], 1: []}, committed={0: 3})

    batch = read(consumer)

    assert (batch.records, batch.to_commit, consumer.polls) == ([], {}, [])
    assert batch.partitions[0].next_offset == 3
    assert (batch.partitions[1].first, batch.partitions[1].last) == (None, None)


def test_a_topic_that_does_not_exist_yet_gives_an_empty_batch() -> None:
    consumer = FakeConsumer({0: [0]})

    batch = read_batch(Member(consumer, "no-such-topic"), "no-such-topic", 100, 0.25)

    assert (batch.topic, batch.records, batch.partitions, batch.to_commit) == (
        "no-such-topic", [], {}, {},
    )  # fmt: skip
    assert consumer.polls == []


def test_a_pass_gives_up_after_idle_polls_in_a_row_and_loads_what_it_has() -> None:
    # The broker reports offsets up to 6 but delivers only 0 and 1.
    consumer = FakeConsumer({0: [0, 1]}, ends={0: 6})

    batch = read(consumer)

    assert [r.offset for r in batch.records] == [0, 1]
    assert batch.to_commit == {0: 2}
    assert len(consumer.polls) == 1 + IDLE_POLLS


def test_a_pass_stops_polling_once_past_the_end_even_if_the_last_offsets_are_no_records():
    # offsets 3 and 4: commit markers of transactions, which a consumer never receives
    consumer = FakeConsumer({0: [0, 1, 2], 1: [0]}, ends={0: 5}, markers_at_end=True)

    batch = read(consumer)

    assert sorted((r.partition, r.offset) for r in batch.records) == [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
    ]
    assert len(consumer.polls) == 1  # no empty polls, each waiting for the poll timeout
    assert batch.to_commit == {0: 3, 1: 1}


def test_an_empty_poll_between_records_does_not_count_towards_giving_up() -> None:
    empty = [True] * (IDLE_POLLS - 1)
    consumer = FakeConsumer(
        {0: [0, 1, 2]}, per_poll=1, empty_polls=[*empty, False, *empty, False, *empty, False]
    )

    batch = read(consumer)

    assert [r.offset for r in batch.records] == [0, 1, 2]
    assert batch.to_commit == {0: 3}


def test_a_replay_reads_exactly_the_range_of_the_pass_that_did_not_commit() -> None:
    consumer = FakeConsumer({0: list(range(8)), 1: list(range(8))}, committed={0: 2, 1: 2})

    batch = read(consumer, replay={0: (2, 5), 1: (0, 4)})  # partition 1 committed since

    # ... and nothing new elsewhere: every partition is capped while one replays
    assert sorted((r.partition, r.offset) for r in batch.records) == [(0, 2), (0, 3), (0, 4)]
    assert batch.to_commit == {0: 5}
    assert (batch.partitions[0].end, batch.partitions[1].end) == (5, 2)
    assert (batch.partitions[0].exact, batch.partitions[1].exact, batch.replayed) == (
        True, False, True,
    )  # fmt: skip


def test_a_replay_reads_its_whole_range_whatever_the_record_cap() -> None:
    consumer = FakeConsumer({0: list(range(8)), 1: list(range(8))}, per_poll=2)

    batch = read(consumer, max_records=3, replay={0: (0, 6)})

    assert [r.offset for r in batch.records] == list(range(6))
    assert batch.to_commit == {0: 6}


def test_a_replay_waits_out_empty_polls_and_fails_rather_than_load_part_of_its_range() -> None:
    stalled = FakeConsumer({0: list(range(6))}, per_poll=2, empty_polls=[False] + [True] * 5)

    batch = read_batch(Member(stalled, TOPIC), TOPIC, 100, 0.0, {0: (0, 6)}, 10.0)

    assert [r.offset for r in batch.records] == list(range(6))  # past IDLE_POLLS empty polls
    endless = FakeConsumer({0: list(range(6))}, per_poll=2, empty_polls=[False] + [True] * 10**6)
    with pytest.raises(ReplayIncompleteError, match="nothing loaded"):
        read_batch(Member(endless, TOPIC), TOPIC, 100, 0.0, {0: (0, 6)}, 0.2)


def test_a_committed_offset_above_the_log_end_reads_the_log_again_from_its_beginning() -> None:
    consumer = FakeConsumer({0: [0, 1, 2], 1: [0]}, committed={0: 10, 1: 1})

    batch = read(consumer)

    assert [(r.partition, r.offset) for r in batch.records] == [(0, 0), (0, 1), (0, 2)]
    assert (batch.partitions[0].rewound_from, batch.partitions[0].gaps) == (10, [])
    assert batch.to_commit == {0: 3}


def test_a_group_that_never_committed_starts_at_the_beginning_without_a_gap() -> None:
    consumer = FakeConsumer({0: [3, 4]}, beginnings={0: 3})

    batch = read(consumer)

    assert (batch.partitions[0].expected, batch.partitions[0].gaps) == (3, [])
    assert batch.to_commit == {0: 5}


def test_a_replay_range_longer_than_the_topic_stops_at_its_end() -> None:
    consumer = FakeConsumer({0: [0, 1, 2]})

    batch = read(consumer, replay={0: (0, 10)})

    assert batch.to_commit == {0: 3}
    assert batch.partitions[0].end == 3


@pytest.mark.parametrize(
    ("logs", "committed", "beginning", "gaps", "to_commit"),
    [
        ([0, 1, 4, 5], 0, 0, [(2, 4)], 6),  # offsets missing in the middle
        ([3, 4], 1, 3, [(1, 3)], 5),  # retention deleted 1 and 2 before they were read
        ([], 1, 5, [(1, 5)], 5),  # retention deleted everything unread
    ],
)
def test_offsets_expected_but_never_read_are_reported_as_gaps(
    logs, committed, beginning, gaps, to_commit
) -> None:
    consumer = FakeConsumer({0: logs}, committed={0: committed}, beginnings={0: beginning})

    batch = read(consumer)

    assert batch.partitions[0].gaps == gaps
    assert batch.to_commit == {0: to_commit}


class Rebalanced(FakeConsumer):
    """The group takes partition 1 away during the second poll that can fetch."""

    def poll(self, timeout_ms=0, max_records=None):
        if len(self.polls) == 1:
            tp = TopicPartition(TOPIC, 1)
            self.listener.on_partitions_revoked({tp})
            del self.positions[tp]
            self.paused.discard(tp)
        return super().poll(timeout_ms=timeout_ms, max_records=max_records)


def test_a_partition_revoked_while_the_pass_reads_is_dropped_and_never_committed() -> None:
    consumer = Rebalanced({0: list(range(4)), 1: list(range(4))}, per_poll=1)
    member = Member(consumer, TOPIC)

    batch = read_batch(member, TOPIC, 100, 1.5)
    committed = commit(member, batch)

    assert {r.partition for r in batch.records} == {0} and set(batch.partitions) == {0}
    assert [r.offset for r in batch.records] == [0, 1, 2, 3]
    assert committed == {0: 4}
    assert consumer.commits == [{TopicPartition(TOPIC, 0): OffsetAndMetadata(4, "", -1)}]


def test_commit_leaves_a_partition_the_member_no_longer_owns_to_its_new_owner() -> None:
    consumer = FakeConsumer({0: [0, 1], 1: [0, 1]})
    member = Member(consumer, TOPIC)
    batch = read_batch(member, TOPIC, 100, 1.5)
    del consumer.positions[TopicPartition(TOPIC, 1)]  # the group moved it

    assert commit(member, batch) == {0: 2}
    assert consumer.commits == [{TopicPartition(TOPIC, 0): OffsetAndMetadata(2, "", -1)}]


def test_commit_stores_the_next_offset_of_every_partition_that_moved() -> None:
    consumer = FakeConsumer({0: [0, 1], 1: [0], 2: [0, 1, 2]}, committed={1: 1})
    batch = read(consumer)

    commit(Member(consumer, TOPIC), batch)

    assert consumer.commits == [
        {
            TopicPartition(TOPIC, 0): OffsetAndMetadata(2, "", -1),
            TopicPartition(TOPIC, 2): OffsetAndMetadata(3, "", -1),
        }
    ]


def test_commit_with_nothing_moved_asks_kafka_nothing() -> None:
    consumer = FakeConsumer({0: [0, 1]}, committed={0: 2})

    commit(Member(consumer, TOPIC), read(consumer))

    assert consumer.commits == []


def test_committed_and_end_offsets_cover_every_partition_of_the_topic() -> None:
    consumer = FakeConsumer({0: [0, 1], 1: [], 2: [0, 1, 2, 3]}, committed={0: 1, 2: 4})

    assert committed_offsets(consumer, TOPIC) == {0: 1, 1: None, 2: 4}
    assert end_offsets(consumer, TOPIC) == {0: 2, 1: 0, 2: 4}
    assert committed_offsets(consumer, "no-such-topic") == {}
    assert end_offsets(consumer, "no-such-topic") == {}


def test_the_consumer_commits_by_hand_under_the_etl_group(settings, monkeypatch) -> None:
    seen = {}
    monkeypatch.setattr(etl.consume, "KafkaConsumer", lambda **config: seen.update(config))
    settings = settings.replace(
        kafka_bootstrap="k1:9092,k2:9092", etl_max_records=20000, kafka_ack_timeout_s=10.0
    )

    open_consumer(settings.kafka, settings.etl)

    assert seen == {
        "bootstrap_servers": ["k1:9092", "k2:9092"],
        "group_id": settings.etl.group,
        "client_id": "clickstream-etl",
        "enable_auto_commit": False,  # offsets move only once the rows are stored
        "auto_offset_reset": "earliest",  # a new group starts at the beginning: nothing skipped
        "max_poll_records": 20000,  # the pass's cap, below etl_max_poll_records
        "max_partition_fetch_bytes": 8 * 1024 * 1024,
        "fetch_max_bytes": 64 * 1024 * 1024,
        "request_timeout_ms": 11000,
    }
    changed = settings.replace(
        etl_max_records=300,
        kafka_ack_timeout_s=1.0,
        etl_max_partition_fetch_bytes=1 << 20,
        etl_fetch_max_bytes=1 << 24,
    )
    open_consumer(changed.kafka, changed.etl)
    assert (seen["max_poll_records"], seen["request_timeout_ms"]) == (300, 6000)
    assert (seen["max_partition_fetch_bytes"], seen["fetch_max_bytes"]) == (1 << 20, 1 << 24)
    open_consumer(
        settings.replace(etl_max_poll_records=1000).kafka,
        settings.replace(etl_max_poll_records=1000).etl,
    )
    assert seen["max_poll_records"] == 1000


@pytest.mark.parametrize(
    ("expected", "offsets", "beginning", "gaps", "next_offset"),
    [
        (0, [0, 1, 2], 0, [], 3),
        (4, [7, 8], 0, [(4, 7)], 9),
        (0, [0, 2, 5], 0, [(1, 2), (3, 5)], 6),
        (3, [], 10, [(3, 10)], 10),  # retention deleted everything unread
        (3, [], 0, [], 3),
        (3, [], 3, [], 3),  # nothing deleted, nothing new: no gap, not even an empty one
    ],
)
def test_settling_a_partition_finds_gaps_and_the_offset_to_commit(
    expected, offsets, beginning, gaps, next_offset
):
    read = PartitionRead(partition=0, expected=expected, end=10, offsets=offsets)

    _settle(read, beginning)

    assert (read.gaps, read.next_offset) == (gaps, next_offset)
