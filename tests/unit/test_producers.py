"""The producers the publisher can send with: each configured for "no loss, no duplicate",
the confluent one's delivery reports as kafka-python futures, and a clear error when the
[fast] extra is missing. The publisher's promises with each client: tests/unit/test_publisher.py.
"""

from __future__ import annotations

import threading

import pytest
from kafka.errors import KafkaError, KafkaTimeoutError

import core.ingest.producers
from core.config import ConfigError, Settings
from core.ingest.producers import (
    CONFLUENT,
    KAFKA_PYTHON,
    check_client,
    confluent_config,
    create,
    producer_config,
)


def test_both_clients_wait_for_every_in_sync_replica_idempotently_within_the_ack_timeout() -> None:
    kafka = Settings.of(kafka_ack_timeout_s=3.0, kafka_linger_ms=2).kafka
    python, confluent = producer_config(kafka, "api"), confluent_config(kafka, "api")
    assert python["acks"] == confluent["acks"] == "all"
    assert python["enable_idempotence"] is confluent["enable.idempotence"] is True
    assert python["delivery_timeout_ms"] == confluent["message.timeout.ms"] == 3002
    assert python["request_timeout_ms"] == confluent["request.timeout.ms"] == 3000


def test_kafka_python_is_the_default_client() -> None:
    assert Settings().kafka.client == KAFKA_PYTHON


def test_choosing_confluent_without_the_package_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setattr(core.ingest.producers, "ConfluentClient", None)
    kafka = Settings.of(kafka_client=CONFLUENT).kafka
    with pytest.raises(ConfigError, match=r"CLICKSTREAM_KAFKA_CLIENT=confluent.*\[fast\]"):
        check_client(kafka)
    with pytest.raises(ConfigError):
        create(kafka, "api")
    check_client(Settings().kafka)  # kafka-python needs nothing more


def test_an_unknown_client_is_refused_by_the_settings() -> None:
    with pytest.raises(ConfigError):
        Settings.from_env({"CLICKSTREAM_KAFKA_CLIENT": "pykafka"})


class Reporter:
    """A confluent client that keeps each delivery callback for the test to call."""

    def __init__(self, config: dict) -> None:
        self.callbacks: list = []
        self.closed = False

    def produce(self, topic, value, key, on_delivery) -> None:
        if self.closed:
            raise RuntimeError("Producer has been closed")
        if value == b"full":
            raise BufferError("Local: Queue full")
        self.callbacks.append(on_delivery)

    def poll(self, timeout: float) -> int:
        threading.Event().wait(timeout)
        return 0

    def flush(self, timeout: float) -> int:
        return len(self.callbacks)

    def purge(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def confluent(monkeypatch):
    monkeypatch.setattr(core.ingest.producers, "ConfluentClient", Reporter)
    monkeypatch.setattr(core.ingest.producers, "_POLL_S", 0.01)
    producer = create(Settings.of(kafka_client=CONFLUENT).kafka, "api")
    yield producer
    producer.close(0)


def test_a_delivery_report_answers_the_future(confluent) -> None:
    ok, failed = confluent.send("t", b"k", b"1"), confluent.send("t", b"k", b"2")
    first, second = confluent._client.callbacks
    first(None, "message")
    second("Broker: Not enough in-sync replicas", "message")
    assert ok.get(1.0) is None
    with pytest.raises(KafkaError, match="in-sync replicas"):
        failed.get(1.0)


def test_no_report_in_time_is_a_timeout(confluent) -> None:
    with pytest.raises(KafkaTimeoutError):
        confluent.send("t", b"k", b"1").get(0.05)


def test_a_full_local_queue_is_a_kafka_error_at_once(confluent) -> None:
    with pytest.raises(KafkaError, match="Queue full"):
        confluent.send("t", b"k", b"full")


def test_closing_stops_the_report_thread_and_closes_the_client(monkeypatch) -> None:
    monkeypatch.setattr(core.ingest.producers, "ConfluentClient", Reporter)
    producer = create(Settings.of(kafka_client=CONFLUENT).kafka, "api")
    producer.close(0)
    assert producer._client.closed and not producer._reports.is_alive()


def test_a_send_to_a_producer_closed_meanwhile_is_a_kafka_error(monkeypatch) -> None:
    """Another thread may replace a producer that lost a batch while this one sends."""
    monkeypatch.setattr(core.ingest.producers, "ConfluentClient", Reporter)
    producer = create(Settings.of(kafka_client=CONFLUENT).kafka, "api")
    producer.close(0)
    with pytest.raises(KafkaError, match="closed"):
        producer.send("t", b"k", b"1")
