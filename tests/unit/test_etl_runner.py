"""One pass (``etl.runner``): offsets committed only once the rows are stored, nothing
committed when a pass fails, and the schedule that runs passes. On the real ClickHouse
engine (chDB, in-process), with Kafka's consumer replaced."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import orjson
import pytest

import etl.runner
from core.host.plugin_manager import build_registry, make_plugin_manager
from etl.deadletters import list_dead_letters, requeue
from etl.metrics import EtlMetrics
from etl.runner import run_forever, run_pass
from etl.warehouse import MigrationNeededError, WarehouseError
from tests.etl_helpers import STARS_DDL, StarsPlugin, batch_of, click, query, stars_rating

REGISTRY = build_registry(make_plugin_manager())
RATED = build_registry(make_plugin_manager(extra_plugins=[StarsPlugin()]))


def test_offsets_are_committed_only_once_the_rows_are_stored(settings, etl_kafka) -> None:
    stored_at_commit: list[int] = []
    etl_kafka.on_commit = lambda batch: stored_at_commit.append(
        query(settings, "SELECT count() FROM {db}.element_clicks")[0][0]
    )
    etl_kafka.batches = [batch_of(settings.kafka.topic, [click(), click(), click()])]

    run_pass(settings, REGISTRY)

    assert stored_at_commit == [3]
    assert etl_kafka.commits == [{0: 3}]


def test_a_pass_whose_load_fails_commits_nothing(settings, etl_kafka, monkeypatch) -> None:
    def failing_load(*args, **kwargs):
        raise WarehouseError("the warehouse went away")

    monkeypatch.setattr(etl.runner, "_load", failing_load)
    etl_kafka.batches = [batch_of(settings.kafka.topic, [click()])]

    with pytest.raises(WarehouseError):
        run_pass(settings, REGISTRY)
    assert etl_kafka.commits == []


def test_a_bad_message_is_dead_lettered_and_still_committed_past(settings, etl_kafka) -> None:
    etl_kafka.batches = [batch_of(settings.kafka.topic, [b"not json", click()])]

    result = run_pass(settings, REGISTRY)

    assert result.rows == {"element_clicks": 1}
    assert result.dead_letters == {"not_json": 1}
    assert query(settings, "SELECT count() FROM {db}.dead_letters") == [(1,)]
    assert etl_kafka.commits == [{0: 2}]


def test_a_pass_with_nothing_new_writes_and_commits_nothing(settings, etl_kafka) -> None:
    empty = batch_of(settings.kafka.topic, [], start=3)
    etl_kafka.batches = [empty]

    result = run_pass(settings, REGISTRY)

    assert (result.messages, result.rows, result.committed, etl_kafka.commits) == (0, {}, {}, [])
    assert query(settings, "SELECT count() FROM {db}.etl_passes") == [(0,)]


def test_a_table_needing_a_migration_stops_the_pass_before_it_reads(settings, etl_kafka) -> None:
    changed = STARS_DDL.replace("ORDER BY (stars, event_id)", "ORDER BY (event_id, stars)")
    etl_kafka.batches = [batch_of(settings.kafka.topic, [stars_rating(4)])]
    run_pass(settings, RATED)
    other = build_registry(make_plugin_manager(extra_plugins=[StarsPlugin(changed)]))

    with pytest.raises(MigrationNeededError, match="test_ratings.*clickstream migrate"):
        run_pass(settings, other)

    assert (len(etl_kafka.reads), len(etl_kafka.consumers)) == (1, 1)


def test_after_insert_runs_once_the_rows_are_stored_and_before_the_commit(
    settings, etl_kafka
) -> None:
    seen = []
    etl_kafka.batches = [batch_of(settings.kafka.topic, [click(), click()])]

    def after_insert():
        seen.append(
            (query(settings, "SELECT count() FROM {db}.element_clicks"), etl_kafka.commits[:])
        )

    run_pass(settings, REGISTRY, after_insert=after_insert)

    assert seen == [([(2,)], [])]
    assert etl_kafka.commits == [{0: 2}]


def test_a_pass_logs_its_result_and_each_event_with_the_pass_id(
    settings, etl_kafka, caplog
) -> None:
    caplog.set_level(logging.DEBUG, logger="etl")
    batch = batch_of(settings.kafka.topic, [click(), b"not json", click()])
    batch.partitions[0].gaps = [(7, 8)]
    etl_kafka.batches = [batch]

    result = run_pass(settings, REGISTRY)

    [line] = [r for r in caplog.records if hasattr(r, "etl_pass")]
    assert line.etl_pass == {
        "pass_id": result.pass_id,
        "messages": 3,
        "rows": {"element_clicks": 2},
        "dead_letters": {"not_json": 1},
        "skipped": {},
        "forgotten": 0,
        "gaps": [(0, 7, 8)],
        "replayed": False,
        "duration_s": result.duration_s,
    }
    events = [r for r in caplog.records if r.name == "etl.events"]
    assert sorted((r.levelname, r.offset, r.pass_id) for r in events) == [
        ("DEBUG", 0, result.pass_id), ("DEBUG", 2, result.pass_id), ("INFO", 1, result.pass_id),
    ]  # fmt: skip


UNTOUCHED = object()  # the registry run_forever hands to each pass, untouched


def _run_forever_in_a_thread(settings, pass_function, stop):
    errors = []

    def run():
        try:
            run_forever(settings, UNTOUCHED, stop, pass_function)
        except BaseException as error:  # noqa: BLE001 - reported to the test
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def test_the_schedule_runs_a_pass_at_once_then_every_interval(settings):
    stop = threading.Event()
    calls = []

    def pass_function(pass_settings, registry):
        assert registry is UNTOUCHED
        calls.append((pass_settings, time.monotonic()))
        if len(calls) == 3:
            stop.set()

    started = time.monotonic()
    thread, errors = _run_forever_in_a_thread(
        settings.replace(etl_interval_s=0.05), pass_function, stop
    )
    thread.join(timeout=10)
    stop.set()

    assert (thread.is_alive(), errors, len(calls)) == (False, [], 3)
    assert calls[0][1] - started < 0.5  # the first pass does not wait for the first tick
    assert calls[2][1] - calls[0][1] < 0.9  # two intervals of 0.05 s, not of a coarser tick
    assert calls[1][1] - calls[0][1] >= 0.04
    assert all(pass_settings.etl.interval_s == 0.05 for pass_settings, _ in calls)


def test_the_schedule_starts_with_a_pass_and_stops_when_told(settings):
    stop = threading.Event()
    calls = []
    thread, errors = _run_forever_in_a_thread(
        settings.replace(etl_interval_s=3600), lambda *args: calls.append(args), stop
    )
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=5)

    assert (len(calls), thread.is_alive(), errors) == (1, False, [])


def test_a_failed_pass_is_retried_at_the_next_tick(settings):
    stop = threading.Event()
    calls = []

    def pass_function(*args):
        calls.append(args)
        if len(calls) == 1:
            raise ConnectionError("Kafka is down")
        stop.set()

    thread, errors = _run_forever_in_a_thread(
        settings.replace(etl_interval_s=0.05), pass_function, stop
    )
    thread.join(timeout=10)
    stop.set()

    assert (len(calls), thread.is_alive(), errors) == (2, False, [])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_sigint_stops_the_schedule_after_the_pass_in_progress(settings, signum):
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    received = []
    for s in previous:  # in case run_forever did not install its own handlers
        signal.signal(s, lambda number, frame: received.append(number))
    stop = threading.Event()
    safety = threading.Timer(5, stop.set)
    calls = []

    def pass_function(*args):
        calls.append(args)
        os.kill(os.getpid(), signum)

    safety.start()
    try:
        started = time.monotonic()
        run_forever(settings.replace(etl_interval_s=3600), UNTOUCHED, stop, pass_function)
        elapsed = time.monotonic() - started
    finally:
        safety.cancel()
        for s, handler in previous.items():
            signal.signal(s, handler)

    assert (len(calls), received) == (1, [])
    assert elapsed < 4


# An event type whose plugin was removed: test_rating is in RATED, not in REGISTRY.


def test_an_event_of_no_installed_plugin_is_dead_lettered_by_default(settings, etl_kafka) -> None:
    assert settings.etl.unknown_events == "dead_letter"
    etl_kafka.batches = [batch_of(settings.kafka.topic, [stars_rating(4), click()])]

    result = run_pass(settings, REGISTRY)

    assert (result.rows, result.dead_letters, result.skipped) == (
        {"element_clicks": 1}, {"unknown_event": 1}, {},
    )  # fmt: skip
    [(reason, detail)] = query(settings, "SELECT reason, detail FROM {db}.dead_letters")
    assert reason == "unknown_event"
    assert "'test_rating'" in detail and "not installed" in detail
    assert "clickstream deadletters requeue --reason unknown_event" in detail
    assert etl_kafka.commits == [{0: 2}]


def test_with_skip_an_event_of_no_installed_plugin_is_committed_past_and_counted(
    settings, etl_kafka, caplog
) -> None:
    skipping = settings.replace(etl_unknown_events="skip")
    bad_envelope = {**stars_rating(1), "event_id": "not a uuid"}
    etl_kafka.batches = [
        batch_of(
            skipping.kafka.topic,
            [stars_rating(4), click(), stars_rating(5), b"not json", bad_envelope],
        )
    ]
    caplog.set_level(logging.INFO, logger="etl")

    result = run_pass(skipping, REGISTRY)

    assert (result.messages, result.rows, result.skipped) == (
        5, {"element_clicks": 1}, {"test_rating": 2},
    )  # fmt: skip
    # Only a well-formed message of an unknown type is skipped; anything broken is kept.
    assert result.dead_letters == {"not_json": 1, "bad_envelope": 1}
    assert query(skipping, "SELECT reason FROM {db}.dead_letters ORDER BY offset") == [
        ("not_json",),
        ("bad_envelope",),
    ]
    assert etl_kafka.commits == [{0: 5}]
    assert query(
        skipping, "SELECT messages, rows, dead_letters, skipped FROM {db}.etl_passes FINAL"
    ) == [(5, 1, 2, 2)]
    [line] = [r for r in caplog.records if r.getMessage().startswith("etl.unknown_event_skipped")]
    assert line.levelname == "WARNING"
    assert line.skipped == {"event": "test_rating", "messages": 2, "pass_id": result.pass_id}

    metrics = EtlMetrics(skipping, REGISTRY)
    metrics.record_pass(result)
    samples = metrics.registry.get_sample_value
    assert samples("clickstream_etl_skipped_messages_total", {"event": "test_rating"}) == 2
    assert samples("clickstream_etl_dead_letters_total", {"reason": "unknown_event"}) is None


class Producer:
    """Stands in for the re-queue's Kafka producer: what it sends, acknowledged at once."""

    sent: list[tuple[str, bytes | None, bytes]] = []

    def __init__(self, **config) -> None:
        pass

    def send(self, topic: str, key: bytes | None = None, value: bytes = b""):
        Producer.sent.append((topic, key, value))
        return self

    def get(self, timeout: float) -> None:
        return None

    def close(self) -> None:
        pass


def test_requeued_unknown_events_load_once_their_plugin_is_reinstalled(
    settings, etl_kafka, monkeypatch
) -> None:
    monkeypatch.setattr("etl.deadletters.KafkaProducer", Producer)
    monkeypatch.setattr(Producer, "sent", [])
    sent = [stars_rating(4), stars_rating(5)]
    etl_kafka.batches = [batch_of(settings.kafka.topic, sent)]
    assert run_pass(settings, REGISTRY).dead_letters == {"unknown_event": 2}

    requeued = requeue(settings, reason="unknown_event")

    assert len(requeued) == 2 and list_dead_letters(settings) == []
    assert [orjson.loads(value) for _, _, value in Producer.sent] == sent
    again = batch_of(settings.kafka.topic, [value for _, _, value in Producer.sent], start=2)
    etl_kafka.batches = [again]
    result = run_pass(settings, RATED)
    assert (result.rows, result.dead_letters) == ({"test_ratings": 2}, {})
    assert query(settings, "SELECT stars FROM {db}.test_ratings ORDER BY stars") == [(4,), (5,)]
    assert all(d.requeued for d in list_dead_letters(settings, include_requeued=True))
