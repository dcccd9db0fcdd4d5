"""Reports (``etl.reports``) on the real Kafka broker and warehouse: page views paired with
their durations, the quality report's duplicates, gaps, lag and freshness, and reports
waiting for chDB's lock."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaAdminClient
from kafka.structs import TopicPartition

from core.config import Settings
from etl.reports import counts_report, plugin_report, quality_report
from etl.runner import run_pass
from etl.warehouse import Warehouse, WarehouseBusyError
from tests.etl_helpers import (
    BASE_TIME,
    at,
    count,
    envelope,
    etl_env,
    produce,
    query,
    rating,
    scalar,
)

pytestmark = pytest.mark.integration


def test_page_views_are_paired_with_durations_and_orphans_reported(etl_settings, etl_registry):
    now = datetime.now(UTC).replace(microsecond=0)

    def view(page_type: str, start_s: float | None, end_s: float | None) -> list[dict]:
        page_view_id = str(uuid.uuid4())
        data = {"page_view_id": page_view_id, "page_type": page_type}
        events = []
        if start_s is not None:
            events.append(envelope("page_view_start", data, user_id="u", at=now + _s(start_s)))
        if end_s is not None:
            events.append(envelope("page_view_end", data, user_id="u", at=now + _s(end_s)))
        return events

    produce(
        etl_settings,
        [
            *view("movie", -100, -90),
            *view("movie", -100, -80),
            *view("movie", -100, -70),
            *view("main", -10, -5.5),
            *view("search", None, -1),  # an end without a start
            *view("search", -5, None),  # still open
            *view("profile", -3600, None),  # open for longer than the 60 s timeout
        ],
    )
    run_pass(etl_settings, etl_registry)

    report = plugin_report(etl_settings, etl_registry, "pageviews")

    assert report.columns == ["page type", "count", "median s", "p90 s"]
    durations = {page_type: tuple(rest) for page_type, *rest in report.rows}
    assert durations == {"movie": (3, 20.0, 28.0), "main": (1, 4.5, 4.5)}
    assert report.figures == {
        "closed": 4,
        "open": 1,
        "timed_out": 1,
        "orphan_end": 1,
        "end_before_start": 0,
        "several_starts": 0,
        "several_ends": 0,
        "other_user": 0,
    }
    audience = plugin_report(etl_settings, etl_registry, "audience").figures
    assert set(audience) == {
        "dau",
        "wau",
        "mau",
        "sessions_per_day",
        "median_session_s",
        "dau_wow_change",
    }
    assert quality_report(etl_settings, etl_registry, with_lag=False).figures == {
        "pageviews": report.figures,
        "audience": audience,
    }
    orphan = query(
        etl_settings,
        "SELECT page_type, started_at, duration_s FROM {db}.page_view_durations "
        "WHERE status = 'orphan_end'",
    )
    assert orphan == [("search", None, None)]


def test_quality_report_counts_duplicates_gaps_lag_and_freshness(etl_settings, etl_registry):
    twice = rating(at=BASE_TIME)
    produce(etl_settings, [rating(at=BASE_TIME)])
    run_pass(etl_settings, etl_registry)  # the group commits: from now on it expects offset 1
    produce(etl_settings, [rating(at=BASE_TIME) for _ in range(3)])
    _delete_records_before(etl_settings, 4)  # retention removed offsets 1..3 unread
    produce(etl_settings, [twice, rating(at=at(7200))])
    run_pass(etl_settings, etl_registry)
    produce(etl_settings, [twice])  # published again (a spool replay), loaded by a later pass
    run_pass(etl_settings, etl_registry)
    produce(etl_settings, [rating(), rating()])  # waiting

    report = quality_report(etl_settings, etl_registry)

    assert [(g.partition, g.start, g.stop) for g in report.gaps] == [(0, 1, 4)]
    assert report.missing_offsets == 3
    [dup] = report.duplicates
    assert (dup.event, dup.hour, dup.deliveries) == (
        "test_rating",
        BASE_TIME.replace(minute=0, second=0, microsecond=0),
        3,  # offset 0 and `twice` twice
    )
    # The later pass finds `twice` in its table and leaves the copy out (etl/sink.py).
    assert (dup.duplicates, dup.redelivered, dup.pending, dup.absorbed) == (1, 0, 0, 1)
    assert report.lag == {0: 2}
    assert report.newest_event == at(7200)
    assert report.freshness_s == pytest.approx(
        (datetime.now(UTC) - at(7200)).total_seconds(), abs=30
    )
    assert count(etl_settings, "test_ratings") == (3, 3)
    assert scalar(etl_settings, "SELECT count() FROM {db}.test_ratings_dedup") == 3

    with Warehouse.from_settings(etl_settings).session() as client:
        client.command(f"OPTIMIZE TABLE {etl_settings.warehouse.database}.test_ratings FINAL")
    [merged] = quality_report(etl_settings, etl_registry, with_lag=False).duplicates
    assert (merged.duplicates, merged.pending, merged.absorbed) == (1, 0, 1)


def test_reports_wait_for_a_process_holding_the_chdb_directory(etl_settings, etl_registry):
    if not Warehouse.from_settings(etl_settings).embedded:
        pytest.skip("the lock exists for chDB only")
    produce(etl_settings, [rating()])
    run_pass(etl_settings, etl_registry)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from core.config import Settings\n"
            "from etl.warehouse import Warehouse\n"
            "with Warehouse.from_settings(Settings.from_env()).session():\n"
            "    print('held', flush=True)\n"
            "    time.sleep(1.5)\n",
        ],
        env=etl_env(etl_settings),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseBusyError):
            counts_report(etl_settings.replace(warehouse_lock_timeout_s=0.2), etl_registry)
        started = time.monotonic()
        counts = counts_report(etl_settings, etl_registry)
        assert time.monotonic() - started > 0.3  # it waited, then worked
        assert {c.table: c.events for c in counts}["test_ratings"] == 1
    finally:
        holder.wait(timeout=30)


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _delete_records_before(settings: Settings, offset: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap.split(","))
    try:
        admin.delete_records({TopicPartition(settings.kafka.topic, 0): offset})
    finally:
        admin.close()
