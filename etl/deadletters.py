"""Messages the ETL could not load: list them, and re-publish them after a fix."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from kafka import KafkaProducer

from core.config import Settings
from core.ingest.producers import producer_config
from etl.ledger import DEAD_LETTER_COLUMNS
from etl.warehouse import Warehouse

COLUMNS = (*DEAD_LETTER_COLUMNS, "requeued", "requeued_at")


@dataclass(frozen=True)
class DeadLetter:
    """One row of ``dead_letters``; ``payload`` and ``key`` are the raw Kafka bytes."""

    id: UUID
    topic: str
    partition: int
    offset: int
    key: bytes
    payload: bytes
    reason: str
    detail: str
    received_at: datetime
    requeued: bool
    requeued_at: datetime | None


def list_dead_letters(
    settings: Settings,
    *,
    ids: list[str] | None = None,
    reason: str | None = None,
    include_requeued: bool = False,
    limit: int | None = None,
) -> list[DeadLetter]:
    """Dead letters, oldest first, filtered by ``ids`` and ``reason``."""
    warehouse = Warehouse.from_settings(settings)
    conditions = ["1"] if include_requeued else ["requeued = 0"]
    parameters: dict[str, object] = {}
    if ids:
        conditions.append("id IN {ids:Array(UUID)}")
        parameters["ids"] = [UUID(i) for i in ids]
    if reason:
        conditions.append("reason = {reason:String}")
        parameters["reason"] = reason
    sql = (
        f"SELECT {', '.join(COLUMNS)} FROM {warehouse.table('dead_letters')} FINAL "
        f"WHERE {' AND '.join(conditions)} ORDER BY received_at, topic, partition, offset"
    )
    if limit:
        sql += f" LIMIT {int(limit)}"
    with warehouse.session() as client:
        if not warehouse.has_table(client, "dead_letters"):
            return []
        rows = client.query(
            sql, parameters=parameters, column_formats={"payload": "bytes", "key": "bytes"}
        ).result_rows
    return [
        DeadLetter(*row[:8], _utc(row[8]), bool(row[9]), row[10] and _utc(row[10])) for row in rows
    ]


def _utc(moment: datetime) -> datetime:
    # clickhouse-connect returns DateTime64(3, 'UTC') values as naive datetimes.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def requeue(
    settings: Settings,
    *,
    ids: list[str] | None = None,
    reason: str | None = None,
    everything: bool = False,
) -> list[DeadLetter]:
    """Publish the raw payload of matching dead letters to their topic again, then mark them.

    Needs ``ids``, ``reason`` or ``everything``. A crash between publishing and
    marking re-publishes them next time; their ``event_id`` makes the copies
    collapse in the warehouse.
    """
    if not (ids or reason or everything):
        raise ValueError("choose dead letters to re-queue: ids, a reason, or everything")
    letters = list_dead_letters(settings, ids=ids, reason=reason)
    if not letters:
        return []
    producer = KafkaProducer(**producer_config(settings.kafka, "clickstream-requeue"))
    try:
        sent = [
            producer.send(letter.topic, key=letter.key or None, value=letter.payload)
            for letter in letters
        ]
        for future in sent:
            future.get(timeout=settings.kafka.ack_timeout_s * 4)
    finally:
        producer.close()
    now = datetime.now(UTC)
    version = time.time_ns()
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        client.insert(
            warehouse.table("dead_letters"),
            [
                [
                    d.id,
                    d.topic,
                    d.partition,
                    d.offset,
                    d.key,
                    d.payload,
                    d.reason,
                    d.detail,
                    d.received_at,
                    1,
                    now,
                    version,
                ]
                for d in letters
            ],
            column_names=[*COLUMNS, "version"],
        )
    return letters
