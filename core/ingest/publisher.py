"""Hands message bytes to Kafka and waits for the broker's acknowledgement."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import Counter

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from core.config import KafkaSettings, Settings, SpoolSettings
from core.ingest import producers
from core.ingest.checks import CachedCheck
from core.ingest.producers import Producer
from core.ingest.spool import Record, SpoolFullError, Spools

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """The broker did not acknowledge a message in time; the client must retry.

    ``unconfirmed``: the message had been handed to the producer, so a broker that stalled
    (paused, overloaded) may still store it after the wait ended; False when it never left.
    """

    def __init__(self, message: str, *, unconfirmed: bool = False) -> None:
        super().__init__(message)
        self.unconfirmed = unconfirmed


class Publisher:
    """A Kafka producer with acks=all and idempotence, created lazily in each process, of
    the client ``CLICKSTREAM_KAFKA_CLIENT`` names (core/ingest/producers.py).

    Creating it on first use, and again after a fork, means a server's workers
    never share the producer (and its sockets and threads) of their parent.

    What Kafka does not acknowledge goes to the process's disk spool (core/ingest/spool.py),
    and while the spool holds anything new messages join it, so that each key keeps its
    order; a replayer thread sends the spool to Kafka once the broker is back.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        spool: SpoolSettings,
        *,
        largest_event_bytes: int,
        check_ttl_s: float = 0.0,
    ) -> None:
        """``check_ttl_s``: how long :meth:`check` reuses its last look at the broker."""
        producers.check_client(kafka)
        self._kafka = kafka
        self._spool_settings = spool
        self._largest_event_bytes = largest_event_bytes
        self._lock = threading.Lock()
        self._producer: Producer | None = None
        self._pid = 0
        self._spools: Spools | None = None
        self._counts: Counter[str] = Counter()
        self._broker_check = CachedCheck(self._check_broker, check_ttl_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> Publisher:
        """The publisher of ``settings``: Kafka, the spool, the largest event the API takes, and
        how often a readiness probe may look at the broker."""
        return cls(
            settings.kafka,
            settings.spool,
            largest_event_bytes=settings.api.max_body_bytes,
            check_ttl_s=settings.ops.ready_ttl_s,
        )

    @property
    def topic(self) -> str:
        return self._kafka.topic

    def _get_producer(self) -> Producer:
        producer = self._producer
        if producer is not None and self._pid == os.getpid():
            return producer
        with self._lock:
            if self._producer is None or self._pid != os.getpid():
                self._producer = producers.create(self._kafka, f"clickstream-api-{os.getpid()}")
                self._pid = os.getpid()
            return self._producer

    def publish(self, key: str, value: bytes) -> None:
        """Send one message; return once Kafka or the spool has it, else raise PublishError."""
        error = self.publish_many([(key, value)])[0]
        if error is not None:
            raise error

    def publish_many(self, messages: list[tuple[str, bytes]]) -> list[PublishError | None]:
        """Send messages together; one result per message, ``None`` once acknowledged or spooled."""
        spools = self._get_spools()
        records = [Record(self.topic, key, value) for key, value in messages]
        if spools is not None and spools.depth:
            return [self._spool(spools, records)] * len(records)
        results = self._send(records)
        self._count(
            published=results.count(None), publish_failures=len(results) - results.count(None)
        )
        failed = [record for record, result in zip(records, results, strict=True) if result]
        if spools is None or not failed:
            return results
        outcome = self._spool(spools, failed)
        if outcome is None:
            return [None] * len(results)
        # Not spooled: each failure keeps whether its send may still reach Kafka.
        return [
            result and PublishError(str(outcome), unconfirmed=result.unconfirmed)
            for result in results
        ]

    def _send(self, records: list[Record]) -> list[PublishError | None]:
        """Send to Kafka and wait for each acknowledgement, in order."""
        try:
            producer = self._get_producer()
            futures = [
                producer.send(record.topic, key=record.key.encode(), value=record.value)
                for record in records
            ]
        except KafkaError as error:
            log.warning("Kafka unavailable: %s", error)
            self._broker_failed()
            return [PublishError(f"Kafka unavailable: {error}")] * len(records)
        results: list[PublishError | None] = []
        for future in futures:
            try:
                future.get(timeout=self._kafka.ack_timeout_s)
                results.append(None)
            except KafkaError as error:
                log.warning("publish failed: %s", error)
                results.append(
                    PublishError(f"Kafka did not acknowledge: {error}", unconfirmed=True)
                )
        if any(results):
            self._broker_failed()
            self._discard_producer(producer)
        return results

    def _broker_failed(self) -> None:
        """Readiness learns of an unacknowledged send at once, not at its next broker check."""
        self._broker_check.put({"ok": False, "detail": "a send was not acknowledged"})

    def _discard_producer(self, producer: Producer) -> None:
        """Start the next send on a new producer.

        After batches expired unacknowledged, kafka-python's idempotent producer can stay
        stuck on their sequence numbers once the broker is back; a new producer id is not.
        What the old one still holds fails and is spooled by its caller.
        """
        with self._lock:
            if self._producer is not producer:
                return
            self._producer = None
        # It cannot flush what failed, which is exactly what its callers spool.
        with contextlib.suppress(KafkaError):
            producer.close(timeout=0)

    def _spool(self, spools: Spools, records: list[Record]) -> PublishError | None:
        """Append to this process's spool; ``None`` once it is on disk."""
        try:
            spools.append(records)
        except SpoolFullError as error:
            self._count(spool_full_rejections=len(records))
            log.warning("spool full: %s", error)
            return PublishError(f"Kafka is unavailable and the spool is full: {error}")
        except OSError as error:
            log.error("spool unwritable: %s", error)
            return PublishError(f"Kafka is unavailable and the spool is unwritable: {error}")
        self._count(spooled=len(records))
        return None

    def _get_spools(self) -> Spools | None:
        """This process's spools, opened (and their replayer started) on first use after a fork."""
        if self._spool_settings.max_bytes == 0:
            return None
        spools = self._spools
        if spools is not None and spools.pid == os.getpid():
            return spools
        with self._lock:
            if self._spools is None or self._spools.pid != os.getpid():
                self._spools = Spools(
                    self._spool_settings,
                    self._send,
                    self._count,
                    largest_event_bytes=self._largest_event_bytes,
                    send_timeout_s=self._kafka.ack_timeout_s,
                )
            return self._spools

    def _count(self, **increments: int) -> None:
        with self._lock:
            self._counts.update(increments)

    def stats(self) -> dict[str, int]:
        """This process's counters, and what its spool holds now."""
        with self._lock:
            counts = dict(self._counts)
        spools = self._spools if self._spools and self._spools.pid == os.getpid() else None
        return {
            "published": counts.get("published", 0),
            "publish_failures": counts.get("publish_failures", 0),
            "spooled": counts.get("spooled", 0),
            "spool_depth_events": spools.depth if spools else 0,
            "spool_bytes": spools.pending_bytes if spools else 0,
            "replayed": counts.get("replayed", 0),
            "spool_full_rejections": counts.get("spool_full_rejections", 0),
        }

    def check_spool(self) -> dict[str, object]:
        """Can the spool take events now, and what does it hold."""
        spools = self._get_spools()
        if spools is None:
            return {"ok": False, "detail": "spool turned off", "depth_events": 0, "bytes": 0}
        return spools.check()

    def check(self) -> dict[str, object]:
        """Readiness of the broker: can we reach it (looked at once per ``check_ttl_s``)."""
        return self._broker_check()

    def _check_broker(self) -> dict[str, object]:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self._kafka.bootstrap.split(","),
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
        """Stop the replayer, release the spool (kept on disk if not empty), close the producer."""
        spools = self._spools
        if spools is not None and spools.pid == os.getpid():
            spools.close()
        with self._lock:
            self._spools = None
            if self._producer is not None and self._pid == os.getpid():
                self._producer.close(timeout=5)
            self._producer = None
