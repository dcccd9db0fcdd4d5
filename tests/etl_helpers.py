"""Helpers of the ETL tests: raw messages written straight to Kafka, and warehouse queries."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from core.config import Settings
from etl.warehouse import Warehouse

BASE_TIME = datetime(2026, 11, 28, 10, 0, 0, 123000, tzinfo=UTC)


def envelope(
    event: str,
    data: dict[str, Any],
    *,
    user_id: str = "anonymous",
    identity: str = "anonymous",
    at: datetime = BASE_TIME,
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A message as the API publishes it."""
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "event": event,
        "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "user_id": user_id,
        "identity": identity,
        "data": data,
        **extra,
    }


def at(seconds: float) -> datetime:
    """``BASE_TIME`` plus ``seconds``."""
    return BASE_TIME + timedelta(seconds=seconds)


def create_topic(settings: Settings, partitions: int = 1) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap.split(","))
    try:
        admin.create_topics([NewTopic(settings.kafka.topic, partitions, 1)], wait_for_metadata=True)
    finally:
        admin.close()


def produce(
    settings: Settings, messages: Iterable[dict[str, Any] | bytes], partition: int | None = None
) -> None:
    """Write messages (dicts as JSON, bytes as they are) to the test's topic, keyed by event."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap.split(","), linger_ms=1)
    try:
        for message in messages:
            if isinstance(message, bytes):
                key, value = b"raw", message
            else:
                key, value = str(message.get("event", "")).encode(), orjson.dumps(message)
            producer.send(settings.kafka.topic, key=key, value=value, partition=partition)
        producer.flush(timeout=10)
    finally:
        producer.close()


def query(settings: Settings, sql: str, **parameters: Any) -> list[tuple]:
    """Rows of ``sql``; ``{db}`` in it is the test's database."""
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        return client.query(
            sql.replace("{db}", warehouse.database), parameters=parameters
        ).result_rows


def scalar(settings: Settings, sql: str, **parameters: Any) -> Any:
    return query(settings, sql, **parameters)[0][0]
