"""Helpers of the fault tests: traffic through the live API, counts, and the reliability table.

Each fault test calls :func:`record` with what it counted; ``scripts/reliability.py``
runs the tests with ``CLICKSTREAM_TEST_RELIABILITY_OUT`` set and turns the lines into
the table of docs/reliability.md.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import orjson
import requests
from kafka import KafkaConsumer

from core.config import Settings
from core.host.plugin_manager import build_registry, make_plugin_manager
from etl.runner import run_pass
from tests.etl_helpers import query

#: File the counts of each fault test are appended to, one JSON object a line (if set).
RESULTS_VARIABLE = "CLICKSTREAM_TEST_RELIABILITY_OUT"


def record(
    scenario: str, *, sent: int, accepted: int, rows: int, duplicates: int, lost: int, **notes
) -> None:
    """Append one row of the reliability table.

    ``rows``: rows in the warehouse after deduplication; ``duplicates``: deliveries of an
    event beyond its first (absorbed by the warehouse); ``lost``: accepted and not stored.
    """
    path = os.environ.get(RESULTS_VARIABLE)
    if not path:
        return
    row = {
        "scenario": scenario,
        "sent": sent,
        "accepted": accepted,
        "rows": rows,
        "duplicates": duplicates,
        "lost": lost,
        "notes": notes,
    }
    with open(path, "ab") as file:
        file.write(orjson.dumps(row) + b"\n")


def search_event(sequence: int, token: str | None = None) -> dict:
    """A ``search_filter`` event whose ``search_query`` carries its place in the traffic."""
    data = {"search_query": f"seq-{sequence:06d}", "filters": ""}
    return {"event": "search_filter", "token": token, "data": data}


@dataclass
class Traffic:
    """One client posting events one after another until stopped, so their order is defined."""

    url: str
    token: str | None = None
    pause_s: float = 0.02
    sent: int = 0
    accepted: list[str] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    retry_after: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def wait_for(self, accepted: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.accepted) < accepted and time.monotonic() < deadline:
            time.sleep(0.05)

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            body = search_event(self.sent, self.token)
            self.sent += 1
            try:
                response = session.post(f"{self.url}/api/v1/events", json=body, timeout=30)
            except requests.RequestException as error:
                self.statuses[f"no answer ({type(error).__name__})"] += 1
                continue
            self.statuses[response.status_code] += 1
            if response.status_code == 202:
                self.accepted.append(response.json()["event_id"])
            elif "Retry-After" in response.headers:
                self.retry_after.append(response.headers["Retry-After"])
            time.sleep(self.pause_s)


def read_event_ids(bootstrap: str, topic: str, expected: int, timeout_s: float = 60) -> list[str]:
    """The ``event_id`` of every message of ``topic``, in order, once ``expected`` arrived."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=500,
    )
    ids: list[str] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(ids) < expected and time.monotonic() < deadline:
            ids.extend(orjson.loads(message.value)["event_id"] for message in consumer)
    finally:
        consumer.close()
    return ids


def load_and_count(settings: Settings, table: str = "search_filters") -> tuple[int, int]:
    """Run ETL passes until Kafka is drained; (rows after deduplication, distinct events)."""
    registry = build_registry(make_plugin_manager())
    while run_pass(settings, registry).messages:
        pass
    rows, events = query(
        settings, f"SELECT count(), uniqExact(event_id) FROM {{db}}.{table} FINAL"
    )[0]
    return rows, events
