"""Hands message bytes to Kafka and waits for the broker's acknowledgement."""

from __future__ import annotations

import logging
import os
import threading

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError

from core.config import Settings

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """The broker did not acknowledge a message in time; the client must retry."""


class Publisher:
    """A Kafka producer with acks=all and idempotence, created lazily in each process.

    Creating it on first use, and again after a fork, means a server's workers
    never share the producer (and its sockets and threads) of their parent.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._producer: KafkaProducer | None = None
        self._pid = 0

    @property
    def topic(self) -> str:
        return self._settings.kafka_topic

    def _get_producer(self) -> KafkaProducer:
        producer = self._producer
        if producer is not None and self._pid == os.getpid():
            return producer
        with self._lock:
            if self._producer is None or self._pid != os.getpid():
                self._producer = KafkaProducer(
                    bootstrap_servers=self._settings.kafka_bootstrap.split(","),
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=self._settings.kafka_linger_ms,
                    max_block_ms=int(self._settings.kafka_ack_timeout_s * 1000),
                    request_timeout_ms=max(1000, int(self._settings.kafka_ack_timeout_s * 1000)),
                    client_id=f"clickstream-api-{os.getpid()}",
                )
                self._pid = os.getpid()
            return self._producer

    def publish(self, key: str, value: bytes) -> None:
        """Send one message; return once the broker acknowledged it, else raise PublishError."""
        error = self.publish_many([(key, value)])[0]
        if error is not None:
            raise error

    def publish_many(self, messages: list[tuple[str, bytes]]) -> list[PublishError | None]:
        """Send messages together; one result per message, ``None`` once acknowledged."""
        try:
            producer = self._get_producer()
            futures = [
                producer.send(self.topic, key=key.encode(), value=value) for key, value in messages
            ]
        except KafkaError as error:
            log.warning("Kafka unavailable: %s", error)
            return [PublishError(f"Kafka unavailable: {error}")] * len(messages)
        results: list[PublishError | None] = []
        for future in futures:
            try:
                future.get(timeout=self._settings.kafka_ack_timeout_s)
                results.append(None)
            except KafkaError as error:
                log.warning("publish failed: %s", error)
                results.append(PublishError(f"Kafka did not acknowledge: {error}"))
        return results

    def check(self) -> dict[str, object]:
        """Readiness of the broker: can we reach it and is the producer connected."""
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self._settings.kafka_bootstrap.split(","),
                request_timeout_ms=2000,
                bootstrap_timeout_ms=2000,
            )
            try:
                admin.list_topics()
            finally:
                admin.close()
        except Exception as error:  # any failure means "not ready", never a crash
            return {"ok": False, "detail": f"{type(error).__name__}: {error}"}
        return {"ok": True, "detail": "broker reachable"}

    def close(self) -> None:
        with self._lock:
            if self._producer is not None and self._pid == os.getpid():
                self._producer.close(timeout=5)
            self._producer = None
