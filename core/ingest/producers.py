"""The Kafka producers the publisher sends with, chosen by ``CLICKSTREAM_KAFKA_CLIENT``.

``kafka-python`` (the default) or ``confluent`` (librdkafka through confluent-kafka, the
``[fast]`` extra): its send path and its I/O thread are C, outside the GIL. Both are made
for "no loss, no duplicate" (acks=all, idempotence, every wait bounded by the ack timeout)
and both look like kafka-python's producer to the publisher: ``send`` returns a future whose
``get(timeout)`` returns once the broker acknowledged and raises a ``KafkaError`` otherwise;
``close(timeout)`` gives what is in flight that long, then fails the rest.
"""

from __future__ import annotations

import _thread
import threading
from typing import Any, Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from core.config import ConfigError, KafkaSettings, env_name

KAFKA_PYTHON = "kafka-python"
CONFLUENT = "confluent"
CLIENTS = (KAFKA_PYTHON, CONFLUENT)

try:
    from confluent_kafka import KafkaException
    from confluent_kafka import Producer as ConfluentClient
except ImportError:  # the [fast] extra is not installed
    ConfluentClient = None
    KafkaException = None

#: How long the delivery thread waits for librdkafka's next event before looking again.
_POLL_S = 0.1


class Acknowledgement(Protocol):
    def get(self, timeout: float) -> Any: ...


class Producer(Protocol):
    """What the publisher needs of a producer: kafka-python's send and close."""

    def send(self, topic: str, key: bytes, value: bytes) -> Acknowledgement: ...

    def close(self, timeout: float | None = None) -> None: ...


def timeout_ms(kafka: KafkaSettings) -> int:
    """The bound on each of the producer's waits, in milliseconds."""
    return max(1000, int(kafka.ack_timeout_s * 1000))


def producer_config(kafka: KafkaSettings, client_id: str) -> dict[str, object]:
    """kafka-python producer settings for "no loss, no duplicate": every in-sync replica
    acknowledges, sends are idempotent, and every wait ends within ``kafka.ack_timeout_s``."""
    bound = timeout_ms(kafka)
    return {
        "bootstrap_servers": kafka.bootstrap.split(","),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": kafka.linger_ms,
        "batch_size": kafka.batch_bytes,
        "max_block_ms": int(kafka.ack_timeout_s * 1000),
        # Without it a broker that is down at start-up holds a request for 30 s.
        "bootstrap_timeout_ms": bound,
        "request_timeout_ms": bound,
        # Give up on a record about when the request stops waiting for it: a record
        # spooled after a timeout should not also reach Kafka late.
        "delivery_timeout_ms": bound + kafka.linger_ms,
        "client_id": client_id,
    }


def confluent_config(kafka: KafkaSettings, client_id: str) -> dict[str, object]:
    """The same promises in librdkafka's terms (its ``produce`` never blocks: a full queue
    is an error at once)."""
    bound = timeout_ms(kafka)
    return {
        "bootstrap.servers": kafka.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": kafka.linger_ms,
        "batch.size": kafka.batch_bytes,
        "socket.connection.setup.timeout.ms": bound,
        "request.timeout.ms": bound,
        "message.timeout.ms": bound + kafka.linger_ms,
        "client.id": client_id,
    }


def check_client(kafka: KafkaSettings) -> None:
    """Raise :class:`ConfigError` if the client ``kafka.client`` names cannot be used here."""
    if kafka.client == CONFLUENT and ConfluentClient is None:
        raise ConfigError(
            f"{env_name('kafka_client')}={CONFLUENT} needs confluent-kafka: "
            "pip install 'clickstream[fast]'"
        )


def create(kafka: KafkaSettings, client_id: str) -> Producer:
    """A new producer of the client ``kafka.client`` names."""
    if kafka.client == CONFLUENT:
        check_client(kafka)
        return ConfluentProducer(confluent_config(kafka, client_id))
    return KafkaProducer(**producer_config(kafka, client_id))


class _Delivery:
    """One message's delivery report, as a kafka-python future; librdkafka calls it.

    A bare lock, held until the report comes: far cheaper per message than an Event.
    """

    __slots__ = ("_pending", "_error")

    def __init__(self) -> None:
        self._pending = _thread.allocate_lock()
        self._pending.acquire()
        self._error: object = None

    def __call__(self, error: object, message: object) -> None:
        self._error = error
        self._pending.release()

    def get(self, timeout: float) -> None:
        if not self._pending.acquire(timeout=timeout):
            raise KafkaTimeoutError(f"no acknowledgement within {timeout} s")
        self._pending.release()
        if self._error is not None:
            raise KafkaError(str(self._error))


class ConfluentProducer:
    """confluent-kafka's producer behind kafka-python's ``send``/``close``.

    A thread of its own serves librdkafka's delivery reports (``poll``), so a request thread
    only waits for its own messages' reports.
    """

    def __init__(self, config: dict[str, object]) -> None:
        self._client = ConfluentClient(config)
        self._closing = threading.Event()
        self._reports = threading.Thread(
            target=self._serve_reports, name="kafka-delivery-reports", daemon=True
        )
        self._reports.start()

    def _serve_reports(self) -> None:
        while not self._closing.is_set():
            self._client.poll(_POLL_S)

    def send(self, topic: str, key: bytes, value: bytes) -> _Delivery:
        delivery = _Delivery()
        try:
            self._client.produce(topic, value=value, key=key, on_delivery=delivery)
        except (BufferError, KafkaException, RuntimeError) as error:
            # RuntimeError: closed by another thread (a lost batch replaced it) meanwhile.
            raise KafkaError(f"librdkafka refused the message: {error}") from None
        return delivery

    def close(self, timeout: float | None = None) -> None:
        """Give what is queued or in flight ``timeout`` seconds, then fail what is left."""
        try:
            self._client.flush(-1 if timeout is None else timeout)
            self._client.purge()
            self._client.poll(0)  # the purged messages' reports: their senders stop waiting
        finally:
            self._closing.set()
            self._reports.join()
            self._client.close()
