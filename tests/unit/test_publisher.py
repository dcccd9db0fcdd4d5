"""The publisher's promises: the producer Kafka needs for "no loss, no duplicate", and no
answer before the broker's acknowledgement. kafka-python's producer is replaced by a recorder.
"""

from __future__ import annotations

import threading

import pytest
from kafka.errors import KafkaTimeoutError

import core.ingest.publisher
from core.config import Settings
from core.ingest.publisher import Publisher, PublishError


class Acknowledgement:
    """A send's future: ``get`` blocks until the test acknowledges or fails it."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._error: Exception | None = None
        self.waited_with: list[float] = []

    def acknowledge(self, error: Exception | None = None) -> None:
        self._error = error
        self._done.set()

    def get(self, timeout: float):
        self.waited_with.append(timeout)
        if not self._done.wait(timeout):
            raise KafkaTimeoutError("no acknowledgement")
        if self._error is not None:
            raise self._error
        return "metadata"


class RecordingProducer:
    """Stands in for ``kafka.KafkaProducer``: records its configuration and what is sent."""

    made: list[RecordingProducer] = []

    def __init__(self, **config) -> None:
        self.config = config
        self.sent: list[tuple[str, bytes, bytes, Acknowledgement]] = []
        self.closed = False
        RecordingProducer.made.append(self)

    def send(self, topic: str, key: bytes, value: bytes) -> Acknowledgement:
        future = Acknowledgement()
        self.sent.append((topic, key, value, future))
        return future

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


@pytest.fixture
def producers(monkeypatch) -> list[RecordingProducer]:
    RecordingProducer.made = []
    monkeypatch.setattr(core.ingest.publisher, "KafkaProducer", RecordingProducer)
    return RecordingProducer.made


@pytest.fixture
def publisher(producers) -> Publisher:
    publisher = Publisher(Settings(spool_max_bytes=0, kafka_ack_timeout_s=2.0))
    yield publisher
    publisher.close()


def publish_in_background(publisher: Publisher) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            publisher.publish("element_click", b"{}")
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
    assert config["enable_idempotence"] is True
    assert config["bootstrap_servers"] == Settings().kafka_bootstrap.split(",")


def test_publish_returns_only_after_the_broker_acknowledged(publisher, producers) -> None:
    thread, outcome = publish_in_background(publisher)
    _wait_for_send(producers)
    topic, key, value, future = producers[0].sent[0]
    assert (topic, key, value) == (Settings().kafka_topic, b"element_click", b"{}")
    thread.join(0.3)
    assert thread.is_alive() and outcome == [], "publish returned before the acknowledgement"
    future.acknowledge()
    thread.join(5)
    assert outcome == ["returned"]
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


def _wait_for_send(producers: list[RecordingProducer], count: int = 1) -> None:
    for _ in range(500):
        if producers and len(producers[0].sent) >= count:
            return
        threading.Event().wait(0.01)
    raise AssertionError("nothing was sent")
