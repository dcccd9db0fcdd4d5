"""The publisher's promises: the producer Kafka needs for "no loss, no duplicate", no answer
before the broker's acknowledgement, and the disk spool for what Kafka does not acknowledge.
Every test runs with each client (``CLICKSTREAM_KAFKA_CLIENT``): kafka-python's producer, or
confluent-kafka's (skipped when it is not installed), replaced by a recorder of its own API;
kafka-python's admin client is replaced too.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import pytest
from kafka.errors import KafkaConnectionError, KafkaTimeoutError

import core.ingest.producers
import core.ingest.publisher
from core.config import Settings
from core.ingest.producers import CLIENTS, CONFLUENT, KAFKA_PYTHON
from core.ingest.publisher import Publisher, PublishError
from core.ingest.spool import Record, encode


class Acknowledgement:
    """A send's future: ``get`` blocks until the test acknowledges or fails it."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._error: Exception | None = None
        self.waited_with: list[float] = []

    def acknowledge(self, error: Exception | None = None) -> None:
        self._error = error
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def delivered(self) -> bool:
        return self._done.is_set() and self._error is None

    def wait(self, timeout: float | None) -> bool:
        return self._done.wait(timeout)

    def get(self, timeout: float):
        self.waited_with.append(timeout)
        if not self._done.wait(timeout):
            raise KafkaTimeoutError("no acknowledgement")
        if self._error is not None:
            raise self._error
        return "metadata"


#: ``RecordingProducer.broker`` values: the broker acknowledges, or refuses, every send at once.
UP: Callable[[bytes], bool] = lambda value: True  # noqa: E731
DOWN: Callable[[bytes], bool] = lambda value: False  # noqa: E731


class RecordingProducer:
    """Stands in for ``kafka.KafkaProducer``: records its configuration and what is sent.

    ``broker`` is None while the test acknowledges each send itself, else it tells from a
    message's value whether the broker takes it at once. Like kafka-python's, ``close`` waits
    up to ``timeout`` (None: without a bound) for what is in flight, then fails the rest.
    """

    made: list[RecordingProducer] = []
    broker: Callable[[bytes], bool] | None = None
    send_error: Exception | None = None
    close_error: Exception | None = None

    def __init__(self, **config) -> None:
        self.config = config
        self.sent: list[tuple[str, bytes, bytes, Acknowledgement]] = []
        self.closed = False
        self.closed_with: list[float | None] = []
        RecordingProducer.made.append(self)

    def send(self, topic: str, key: bytes, value: bytes) -> Acknowledgement:
        if RecordingProducer.send_error is not None:
            raise RecordingProducer.send_error
        future = Acknowledgement()
        if RecordingProducer.broker is not None:
            taken = RecordingProducer.broker(value)
            future.acknowledge(None if taken else KafkaTimeoutError("broker down"))
        self.sent.append((topic, key, value, future))
        return future

    def close(self, timeout: float | None = None) -> None:
        self.closed_with.append(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        for *_, future in list(self.sent):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not future.wait(left):
                future.acknowledge(KafkaTimeoutError("producer closed"))
        self.closed = True
        if RecordingProducer.close_error is not None:
            raise RecordingProducer.close_error


class RecordingConfluentClient:
    """Stands in for ``confluent_kafka.Producer``, recording like :class:`RecordingProducer`
    (its ``made``, ``broker``, ``send_error`` and ``close_error`` too), through librdkafka's
    API: ``produce`` with a delivery callback that only ``poll`` or ``flush`` serve, ``purge``
    failing what is left, then ``close``."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.sent: list[tuple[str, bytes, bytes, Acknowledgement]] = []
        self.closed = False
        self.closed_with: list[float | None] = []
        self._unreported: list[tuple[Acknowledgement, Callable]] = []
        self._lock = threading.Lock()
        RecordingProducer.made.append(self)

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Callable) -> None:
        if RecordingProducer.send_error is not None:
            raise BufferError(str(RecordingProducer.send_error))
        future = Acknowledgement()
        if RecordingProducer.broker is not None:
            taken = RecordingProducer.broker(value)
            future.acknowledge(None if taken else KafkaTimeoutError("broker down"))
        with self._lock:
            self.sent.append((topic, key, value, future))
            self._unreported.append((future, on_delivery))

    def _report(self) -> int:
        with self._lock:
            done = [(f, report) for f, report in self._unreported if f.done]
            self._unreported = [(f, report) for f, report in self._unreported if not f.done]
        for future, report in done:
            report(future._error, None)
        return len(done)

    def poll(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while not (served := self._report()) and time.monotonic() < deadline:
            time.sleep(0.001)
        return served

    def flush(self, timeout: float) -> int:
        self.closed_with.append(timeout)
        deadline = None if timeout < 0 else time.monotonic() + timeout
        while self._unreported and (deadline is None or time.monotonic() < deadline):
            self._report()
            time.sleep(0.001)
        return len(self._unreported)

    def purge(self) -> None:
        for future, _ in list(self._unreported):
            if not future.done:
                future.acknowledge(KafkaTimeoutError("purged"))

    def close(self) -> None:
        self._report()
        self.closed = True
        if RecordingProducer.close_error is not None:
            raise RecordingProducer.close_error


def delivered(producers: list[RecordingProducer]) -> list[tuple[bytes, bytes]]:
    """(key, value) of every send the broker acknowledged, over all producers, in order."""
    return [(key, value) for p in producers for _, key, value, ack in p.sent if ack.delivered]


#: The client the current test runs with; the ``producers`` fixture sets it.
CLIENT = KAFKA_PYTHON


def settings(**values) -> Settings:
    """``Settings.of(**values)`` with the client the test runs with."""
    return Settings.of(kafka_client=CLIENT, **values)


@pytest.fixture(params=CLIENTS)
def client(request) -> str:
    if request.param == CONFLUENT:
        pytest.importorskip("confluent_kafka")
    return request.param


@pytest.fixture
def producers(monkeypatch, client) -> list[RecordingProducer]:
    monkeypatch.setattr(RecordingProducer, "made", [])
    monkeypatch.setattr(RecordingProducer, "broker", None)
    monkeypatch.setattr(RecordingProducer, "send_error", None)
    monkeypatch.setattr(RecordingProducer, "close_error", None)
    monkeypatch.setattr(core.ingest.producers, "KafkaProducer", RecordingProducer)
    monkeypatch.setattr(core.ingest.producers, "ConfluentClient", RecordingConfluentClient)
    monkeypatch.setattr(f"{__name__}.CLIENT", client)
    return RecordingProducer.made


@pytest.fixture
def publisher(producers) -> Publisher:
    publisher = Publisher.from_settings(settings(spool_max_bytes=0, kafka_ack_timeout_s=2.0))
    yield publisher
    publisher.close()


def publish_in_background(
    publisher: Publisher, key: str = "element_click", value: bytes = b"{}"
) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            publisher.publish(key, value)
            outcome.append("returned")
        except PublishError as error:
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_the_producer_waits_for_every_in_sync_replica_and_is_idempotent(
    publisher, producers
) -> None:
    thread, _ = publish_in_background(publisher)
    _wait_for_send(producers)
    producers[0].sent[0][3].acknowledge()
    thread.join(5)
    config = producers[0].config
    assert config["acks"] == "all"
    if CLIENT == KAFKA_PYTHON:
        assert config["enable_idempotence"] is True
        assert config["bootstrap_servers"] == Settings().kafka.bootstrap.split(",")
    else:
        assert config["enable.idempotence"] is True
        assert config["bootstrap.servers"] == Settings().kafka.bootstrap


def test_publish_returns_only_after_the_broker_acknowledged(publisher, producers) -> None:
    thread, outcome = publish_in_background(publisher)
    _wait_for_send(producers)
    topic, key, value, future = producers[0].sent[0]
    assert (topic, key, value) == (Settings().kafka.topic, b"element_click", b"{}")
    thread.join(0.3)
    assert thread.is_alive() and outcome == [], "publish returned before the acknowledgement"
    future.acknowledge()
    thread.join(5)
    assert outcome == ["returned"]
    if CLIENT == KAFKA_PYTHON:
        assert future.waited_with == [2.0]


def test_a_send_the_broker_refuses_is_a_publish_error(publisher, producers) -> None:
    thread, outcome = publish_in_background(publisher)
    _wait_for_send(producers)
    producers[0].sent[0][3].acknowledge(KafkaTimeoutError("expired"))
    thread.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], PublishError)
    assert producers[0].closed, "a producer that lost a batch is replaced"


def test_a_batch_answers_each_message_by_its_own_acknowledgement(publisher, producers) -> None:
    results: list = []
    thread = threading.Thread(
        target=lambda: results.extend(publisher.publish_many([("a", b"1"), ("b", b"2")]))
    )
    thread.start()
    _wait_for_send(producers, count=2)
    first, second = (sent[3] for sent in producers[0].sent)
    first.acknowledge()
    thread.join(0.3)
    assert thread.is_alive(), "the batch answered before its second acknowledgement"
    second.acknowledge(KafkaTimeoutError("expired"))
    thread.join(5)
    assert results[0] is None and isinstance(results[1], PublishError)


def test_the_producer_is_configured_from_the_settings_and_bounded_by_the_ack_timeout(
    producers,
) -> None:
    """Every wait of the producer ends about when the request stops waiting for the broker,
    so a record spooled after a timeout does not also reach Kafka late."""
    RecordingProducer.broker = UP
    publisher = Publisher.from_settings(
        settings(
            spool_max_bytes=0,
            kafka_bootstrap="k1:9092,k2:9093",
            kafka_linger_ms=7,
            kafka_batch_bytes=12345,
            kafka_ack_timeout_s=2.5,
        )
    )
    publisher.publish("element_click", b"{}")
    publisher.close()
    config = producers[0].config
    if CLIENT == KAFKA_PYTHON:
        assert config["bootstrap_servers"] == ["k1:9092", "k2:9093"]
        assert (config["linger_ms"], config["batch_size"]) == (7, 12345)
        assert config["max_block_ms"] == 2500
        assert config["bootstrap_timeout_ms"] == config["request_timeout_ms"] == 2500
        # kafka-python wants at least request timeout + linger; more would deliver late.
        assert config["delivery_timeout_ms"] == 2500 + 7
        assert config["client_id"].endswith(f"-{os.getpid()}")
    else:
        assert config["bootstrap.servers"] == "k1:9092,k2:9093"
        assert (config["linger.ms"], config["batch.size"]) == (7, 12345)
        assert config["socket.connection.setup.timeout.ms"] == 2500
        assert config["request.timeout.ms"] == 2500
        assert config["message.timeout.ms"] == 2500 + 7
        assert config["client.id"].endswith(f"-{os.getpid()}")


def test_one_producer_serves_every_publish_of_a_process(publisher, producers) -> None:
    RecordingProducer.broker = UP
    for _ in range(3):
        publisher.publish("element_click", b"{}")
    assert len(producers) == 1 and len(producers[0].sent) == 3


def test_after_a_lost_batch_the_next_publish_goes_through_a_new_producer(
    publisher, producers
) -> None:
    RecordingProducer.broker = DOWN
    with pytest.raises(PublishError):
        publisher.publish("element_click", b"lost")
    RecordingProducer.broker = UP
    publisher.publish("element_click", b"next")
    assert [len(p.sent) for p in producers] == [1, 1]
    assert producers[0].closed and delivered(producers) == [(b"element_click", b"next")]


def test_a_producer_that_lost_a_batch_is_dropped_without_waiting_for_the_rest(
    publisher, producers
) -> None:
    """What it still holds fails at once (and is spooled by its caller)."""
    first, first_outcome = publish_in_background(publisher, value=b"1")
    _wait_for_send(producers, count=1)
    second, second_outcome = publish_in_background(publisher, value=b"2")
    _wait_for_send(producers, count=2)
    try:
        producers[0].sent[0][3].acknowledge(KafkaTimeoutError("expired"))
        first.join(0.5)
        assert not first.is_alive(), "the failed publish waited for the lost producer"
        second.join(0.5)
        assert not second.is_alive(), "the message in flight outlived its producer"
    finally:
        producers[0].sent[1][3].acknowledge()
        first.join(5)
        second.join(5)
    assert isinstance(first_outcome[0], PublishError)
    assert isinstance(second_outcome[0], PublishError)


def test_a_lost_batch_is_a_publish_error_even_if_closing_its_producer_fails(
    publisher, producers
) -> None:
    RecordingProducer.broker = DOWN
    RecordingProducer.close_error = KafkaConnectionError("socket gone")
    with pytest.raises(PublishError):
        publisher.publish("element_click", b"{}")


def test_a_producer_that_cannot_send_at_all_fails_every_message(publisher, producers) -> None:
    RecordingProducer.send_error = KafkaTimeoutError("no metadata within max_block_ms")
    results = publisher.publish_many([("a", b"1"), ("b", b"2")])
    assert len(results) == 2 and all(isinstance(r, PublishError) for r in results)
    assert not any(r.unconfirmed for r in results)  # nothing left: nothing can arrive late


def test_a_send_that_left_and_was_not_acknowledged_is_unconfirmed(publisher, producers) -> None:
    """A stalled broker (SIGSTOP, overload) may still store it: found by the chaos run."""
    RecordingProducer.broker = DOWN
    [result] = publisher.publish_many([("a", b"1")])
    assert isinstance(result, PublishError) and result.unconfirmed


def test_a_forked_worker_makes_its_own_producer_and_leaves_its_parents_alone(
    publisher, producers, monkeypatch
) -> None:
    RecordingProducer.broker = UP
    publisher.publish("element_click", b"parent")
    monkeypatch.setattr(os, "getpid", lambda: 4242424)
    publisher.publish("element_click", b"child")
    publisher.close()
    assert [[value for _, _, value, _ in p.sent] for p in producers] == [[b"parent"], [b"child"]]
    client_id = producers[1].config["client_id" if CLIENT == KAFKA_PYTHON else "client.id"]
    assert client_id.endswith("-4242424")
    assert not producers[0].closed, "the child closed its parent's producer"
    assert producers[1].closed


def test_closing_gives_what_the_producer_holds_a_bounded_time_to_reach_kafka(
    publisher, producers
) -> None:
    thread, outcome = publish_in_background(publisher)
    _wait_for_send(producers)
    closing = threading.Thread(target=publisher.close)
    closing.start()
    closing.join(0.1)
    assert closing.is_alive(), "close did not wait for the message in flight"
    producers[0].sent[0][3].acknowledge()
    closing.join(5)
    thread.join(5)
    assert outcome == ["returned"] and producers[0].closed
    [bound] = producers[0].closed_with
    assert bound is not None, "close could wait forever for a broker that is down"


def test_closing_twice_is_harmless(spooling, producers) -> None:
    RecordingProducer.broker = DOWN
    spooling.publish("element_click", b"{}")
    spooling.close()
    spooling.close()


# --- check: can the broker be reached ----------------------------------------------------


class RecordingAdmin:
    """Stands in for ``kafka.KafkaAdminClient``; ``failure`` is raised by ``list_topics``."""

    made: list[RecordingAdmin] = []
    failure: Exception | None = None

    def __init__(self, **config) -> None:
        self.config = config
        self.closed = False
        RecordingAdmin.made.append(self)

    def list_topics(self) -> list[str]:
        if RecordingAdmin.failure is not None:
            raise RecordingAdmin.failure
        return ["events"]

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def admins(monkeypatch) -> list[RecordingAdmin]:
    monkeypatch.setattr(RecordingAdmin, "made", [])
    monkeypatch.setattr(RecordingAdmin, "failure", None)
    monkeypatch.setattr(core.ingest.publisher, "KafkaAdminClient", RecordingAdmin)
    return RecordingAdmin.made


def test_a_reachable_broker_is_ready(admins) -> None:
    publisher = Publisher.from_settings(Settings.of(kafka_bootstrap="k1:9092,k2:9093"))
    assert publisher.check() == {"ok": True, "detail": "broker reachable"}
    [admin] = admins
    assert admin.config["bootstrap_servers"] == ["k1:9092", "k2:9093"]
    assert admin.closed


def test_the_readiness_probe_gives_up_on_a_silent_broker_within_seconds(admins) -> None:
    """Not after kafka-python's 30 s default: a probe that hangs is a probe that fails."""
    Publisher.from_settings(Settings()).check()
    config = admins[0].config
    assert 0 < config["request_timeout_ms"] <= 5000
    assert 0 < config["bootstrap_timeout_ms"] <= 5000


def test_a_broker_that_does_not_answer_is_not_ready_and_says_why(admins) -> None:
    RecordingAdmin.failure = TimeoutError("no topics in time")
    publisher = Publisher.from_settings(Settings())
    assert publisher.check() == {"ok": False, "detail": "TimeoutError: no topics in time"}
    assert admins[0].closed


def test_a_broker_that_cannot_be_reached_is_not_ready_and_never_a_crash(monkeypatch) -> None:
    def unreachable(**config):
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(core.ingest.publisher, "KafkaAdminClient", unreachable)
    answer = Publisher.from_settings(Settings()).check()
    assert answer == {"ok": False, "detail": "ConnectionRefusedError: connection refused"}


# --- the disk spool ----------------------------------------------------------------------


def spool_settings(tmp_path, **changes) -> Settings:
    defaults = {
        "spool_dir": str(tmp_path / "spool"),
        "spool_max_bytes": 1 << 20,
        "spool_fsync": False,
        "spool_replay_interval_s": 0.02,
        "kafka_ack_timeout_s": 0.5,
    }
    return settings(**{**defaults, **changes})


@pytest.fixture
def spooling(tmp_path, producers) -> Publisher:
    """A publisher with a spool whose replayer waits longer than any test: nothing is replayed."""
    publisher = Publisher.from_settings(spool_settings(tmp_path, spool_replay_interval_s=60.0))
    yield publisher
    publisher.close()


def spooled_bytes(*messages: tuple[str, bytes]) -> int:
    return sum(len(encode(Record(Settings().kafka.topic, k, v))) for k, v in messages)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never held")
        threading.Event().wait(0.01)


def test_nothing_is_counted_before_anything_is_published(spooling) -> None:
    assert spooling.stats() == dict.fromkeys(
        [
            "published",
            "publish_failures",
            "spooled",
            "spool_depth_events",
            "spool_bytes",
            "replayed",
            "spool_full_rejections",
        ],
        0,
    )


def test_what_kafka_does_not_acknowledge_is_spooled_and_answered_as_stored(
    spooling, producers
) -> None:
    RecordingProducer.broker = lambda value: value != b"lost"
    results = spooling.publish_many([("a", b"ok"), ("b", b"lost")])
    assert results == [None, None]
    assert delivered(producers) == [(b"a", b"ok")]
    assert spooling.stats() == {
        "published": 1,
        "publish_failures": 1,
        "spooled": 1,
        "spool_depth_events": 1,
        "spool_bytes": spooled_bytes(("b", b"lost")),
        "replayed": 0,
        "spool_full_rejections": 0,
    }
    check = spooling.check_spool()
    assert (check["ok"], check["depth_events"], check["detail"]) == (True, 1, "1 events waiting")


def test_while_the_spool_holds_events_new_ones_join_it_without_trying_kafka(
    spooling, producers
) -> None:
    """So that each key keeps its order: nothing overtakes what waits on disk."""
    RecordingProducer.broker = DOWN
    spooling.publish("element_click", b"first")
    RecordingProducer.broker = UP
    assert spooling.publish_many([("element_click", b"second"), ("other", b"third")]) == [None] * 2
    sent = [value for p in producers for _, _, value, _ in p.sent]
    assert sent == [b"first"]
    stats = spooling.stats()
    assert (stats["spooled"], stats["spool_depth_events"], stats["publish_failures"]) == (3, 3, 1)


def test_spooled_events_reach_kafka_in_order_once_it_is_back(tmp_path, producers) -> None:
    publisher = Publisher.from_settings(spool_settings(tmp_path))
    try:
        RecordingProducer.broker = DOWN
        messages = [("element_click", b"1"), ("element_click", b"2"), ("other", b"3")]
        assert publisher.publish_many(messages) == [None] * 3
        RecordingProducer.broker = UP
        # The count follows the commit that empties the spool: wait for the count.
        wait_until(lambda: publisher.stats()["replayed"] == 3)
        assert delivered(producers) == [(k.encode(), v) for k, v in messages]
        stats = publisher.stats()
        assert (stats["spooled"], stats["spool_depth_events"], stats["spool_bytes"]) == (3, 0, 0)
    finally:
        publisher.close()


def test_what_the_spool_holds_at_close_stays_on_disk_for_the_next_process(
    tmp_path, producers
) -> None:
    first = Publisher.from_settings(spool_settings(tmp_path, spool_replay_interval_s=60.0))
    RecordingProducer.broker = DOWN
    first.publish("element_click", b"kept")
    first.close()
    RecordingProducer.broker = UP
    second = Publisher.from_settings(spool_settings(tmp_path))
    try:
        assert second.check_spool()["depth_events"] == 1
        wait_until(lambda: (b"element_click", b"kept") in delivered(producers))
    finally:
        second.close()


def test_a_full_spool_refuses_only_what_kafka_did_not_take(tmp_path, producers) -> None:
    publisher = Publisher.from_settings(spool_settings(tmp_path, spool_max_bytes=1))
    try:
        RecordingProducer.broker = lambda value: value != b"lost"
        ok, refused = publisher.publish_many([("a", b"ok"), ("b", b"lost")])
        assert ok is None and isinstance(refused, PublishError) and refused.unconfirmed
        stats = publisher.stats()
        assert (stats["spool_full_rejections"], stats["spooled"]) == (1, 0)
        assert stats["spool_depth_events"] == 0
    finally:
        publisher.close()


def test_an_unwritable_spool_is_a_publish_error(tmp_path, producers) -> None:
    (tmp_path / "spool").write_text("a file where the spool directory should be")
    publisher = Publisher.from_settings(spool_settings(tmp_path))
    try:
        RecordingProducer.broker = DOWN
        with pytest.raises(PublishError) as refused:
            publisher.publish("element_click", b"{}")
        # The send left before it timed out: a stalled broker may store it yet.
        assert refused.value.unconfirmed
        assert publisher.stats()["spooled"] == 0
        assert publisher.check_spool()["ok"] is False
    finally:
        publisher.close()


def test_an_empty_spool_is_ready_to_take_events(spooling) -> None:
    assert spooling.check_spool() == {
        "ok": True,
        "detail": "empty",
        "depth_events": 0,
        "bytes": 0,
        "max_bytes": 1 << 20,
    }


def test_a_spool_turned_off_never_touches_the_disk(tmp_path, producers) -> None:
    publisher = Publisher.from_settings(spool_settings(tmp_path, spool_max_bytes=0))
    try:
        RecordingProducer.broker = DOWN
        with pytest.raises(PublishError):
            publisher.publish("element_click", b"{}")
        assert publisher.check_spool() == {
            "ok": False,
            "detail": "spool turned off",
            "depth_events": 0,
            "bytes": 0,
        }
        assert not (tmp_path / "spool").exists()
    finally:
        publisher.close()


def test_a_forked_worker_spools_into_a_spool_of_its_own(
    spooling, producers, tmp_path, monkeypatch
) -> None:
    RecordingProducer.broker = DOWN
    spooling.publish("element_click", b"parent")
    parents = spooling._spools  # only to release it at the end: the child cannot
    monkeypatch.setattr(os, "getpid", lambda: 4242424)
    try:
        assert spooling.stats()["spool_depth_events"] == 0, "the child counts its parent's spool"
        spooling.publish("element_click", b"child")
        assert spooling.stats()["spool_depth_events"] == 1
        owners = sorted(path.name.split("-")[0] for path in (tmp_path / "spool").iterdir())
        assert owners == sorted([str(parents.pid), "4242424"])
    finally:
        spooling.close()
        parents.close()


def _wait_for_send(producers: list[RecordingProducer], count: int = 1) -> None:
    for _ in range(500):
        if producers and len(producers[0].sent) >= count:
            return
        threading.Event().wait(0.01)
    raise AssertionError("nothing was sent")
