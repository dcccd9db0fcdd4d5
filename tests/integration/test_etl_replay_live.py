"""Replaying a pass that crashed between its inserts and its commit, on the real Kafka and
chDB: the replay must store nothing twice in the event tables' raw ``count()``, whatever
arrives meanwhile, however Kafka serves the partitions, and even if the broker stalls.

The crash is an exception from ``after_insert`` (the rows are in, the offsets are not
committed); faults on the Kafka side come from a consumer whose ``poll`` misbehaves.
"""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaConsumer

import etl.consume
from core.config import Settings
from core.host.plugin_manager import build_registry, make_plugin_manager
from etl.consume import ReplayIncompleteError
from etl.reports import consumer_lag
from etl.runner import run_pass
from tests.etl_helpers import create_topic, envelope, produce, query
from tests.reliability import record

pytestmark = pytest.mark.integration

REGISTRY = build_registry(make_plugin_manager())


class CrashError(Exception):
    """The process dying between the inserts and the commit."""


def crash() -> None:
    raise CrashError("killed between insert and commit")


def search(i: int) -> dict:
    return envelope(
        "search_filter", {"search_query": f"q{i}-{uuid.uuid4().hex[:6]}", "filters": ""}
    )


@pytest.fixture
def two_partitions(settings: Settings, kafka_bootstrap: str) -> Settings:
    settings = settings.replace(etl_poll_timeout_s=0.2)
    create_topic(settings, partitions=2)
    return settings


def stored(settings: Settings) -> tuple[int, int]:
    """(raw count(), distinct event ids) of search_filters: every row, merged or not."""
    return query(settings, "SELECT count(), uniqExact(event_id) FROM {db}.search_filters")[0]


def crash_a_pass(settings: Settings) -> None:
    with pytest.raises(CrashError):
        run_pass(settings, REGISTRY, after_insert=crash)


def drain(settings: Settings) -> list:
    results = []
    while not results or results[-1].messages:
        results.append(run_pass(settings, REGISTRY))
    return results


def consumer_class(monkeypatch, poll):
    """Make the ETL's Kafka consumers answer ``poll`` with ``poll(real_poll, consumer, ...)``."""

    class Faulty(KafkaConsumer):
        def poll(self, timeout_ms=0, max_records=None, update_offsets=True):
            return poll(super().poll, self, timeout_ms, max_records)

    monkeypatch.setattr(etl.consume, "KafkaConsumer", Faulty)


def test_a_message_on_another_partition_before_the_retry_is_not_stored_twice(two_partitions):
    settings = two_partitions
    produce(settings, [search(i) for i in range(5)], partition=0)
    crash_a_pass(settings)
    assert stored(settings) == (5, 5)

    produce(settings, [search(5)], partition=1)  # arrives before the retry
    passes = drain(settings)

    assert passes[0].replayed
    assert stored(settings) == (6, 6)
    assert consumer_lag(settings) == {0: 0, 1: 0}
    record_replay("ETL replay: a message on another partition before the retry", 6, settings)


def test_the_record_cap_reached_on_another_partition_does_not_cut_the_replay(
    two_partitions, monkeypatch
):
    settings = two_partitions.replace(etl_max_records=5)
    produce(settings, [search(i) for i in range(5)], partition=0)
    crash_a_pass(settings)
    produce(settings, [search(i) for i in range(5, 8)], partition=1)

    served = []

    def partition_1_first(real_poll, consumer, timeout_ms, max_records):
        # The first poll serves only partition 1, as a broker may.
        if served:
            return real_poll(timeout_ms=timeout_ms, max_records=max_records)
        served.append(True)
        others = [tp for tp in consumer.assignment() if tp.partition != 1]
        consumer.pause(*others)
        try:
            return real_poll(timeout_ms=max(timeout_ms, 1000), max_records=max_records)
        finally:
            consumer.resume(*others)

    consumer_class(monkeypatch, partition_1_first)
    run_pass(settings, REGISTRY)
    monkeypatch.undo()
    drain(settings)

    assert stored(settings) == (8, 8)
    assert consumer_lag(settings) == {0: 0, 1: 0}
    record_replay("ETL replay: the record cap reached on another partition first", 8, settings)


def test_a_broker_stalling_mid_replay_does_not_cut_the_replay(two_partitions, monkeypatch):
    settings = two_partitions
    produce(settings, [search(i) for i in range(6)], partition=0)
    crash_a_pass(settings)

    stalled_at: list[float] = []

    def stall_after_two_records(real_poll, consumer, timeout_ms, max_records):
        # Two records, then nothing for 1.5 s: the broker pausing mid-read.
        if stalled_at and time.monotonic() - stalled_at[0] < 1.5:
            time.sleep(timeout_ms / 1000)
            return {}
        records = real_poll(timeout_ms=timeout_ms, max_records=2)
        if records and not stalled_at:
            stalled_at.append(time.monotonic())
        return records

    consumer_class(monkeypatch, stall_after_two_records)
    replay = run_pass(settings, REGISTRY)
    monkeypatch.undo()
    drain(settings)

    assert (replay.replayed, replay.messages) == (True, 6)
    assert stored(settings) == (6, 6)
    assert consumer_lag(settings) == {0: 0, 1: 0}
    record_replay("ETL replay: the broker stalling 1.5 s mid-read", 6, settings)


def test_a_replay_that_cannot_read_its_whole_range_in_time_loads_and_commits_nothing(
    two_partitions, monkeypatch
):
    settings = two_partitions.replace(etl_replay_timeout_s=1.0)
    produce(settings, [search(i) for i in range(6)], partition=0)
    crash_a_pass(settings)

    def two_records_then_silence(real_poll, consumer, timeout_ms, max_records):
        if getattr(consumer, "served", False):
            time.sleep(timeout_ms / 1000)
            return {}
        records = real_poll(timeout_ms=timeout_ms, max_records=2)
        consumer.served = bool(records)
        return records

    consumer_class(monkeypatch, two_records_then_silence)
    with pytest.raises(ReplayIncompleteError, match="nothing loaded"):
        run_pass(settings, REGISTRY)
    monkeypatch.undo()

    assert stored(settings) == (6, 6)  # the crashed pass's rows, nothing more
    assert consumer_lag(settings) == {0: 6, 1: 0}
    assert drain(settings)[0].replayed
    assert stored(settings) == (6, 6)


def record_replay(scenario: str, sent: int, settings: Settings) -> None:
    rows, events = stored(settings)
    deliveries = query(settings, "SELECT count() FROM {db}.event_deliveries")[0][0]
    record(
        scenario,
        sent=sent,
        accepted=sent,
        rows=rows,
        duplicates=deliveries - events,
        lost=sent - events,
        stored_twice=rows - events,
    )
