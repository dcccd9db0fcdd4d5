"""The ETL's metrics (``etl.metrics``): passes by outcome, rows by table, dead letters by
reason, and the quality report's figures."""

from __future__ import annotations

import math

import pytest

from core.config import Settings
from etl.ledger import PassResult
from etl.metrics import EtlMetrics
from etl.reports import DuplicateHour, OffsetGap, QualityReport
from tests.fakes import sample


def test_a_pass_is_counted_by_table_reason_and_outcome():
    now = [1000.0]
    metrics = EtlMetrics(Settings(), registry=None, clock=lambda: now[0])  # type: ignore[arg-type]
    metrics.record_pass(
        PassResult(
            pass_id="p1",
            messages=6,
            rows={"element_clicks": 3, "page_views": 1},
            dead_letters={"schema_invalid": 2},
            gaps=[(0, 10, 13)],
            replayed=True,
            duration_s=0.4,
        )
    )
    metrics.record_pass(PassResult(pass_id="p2"))
    metrics.record_failure(1.5)
    text = metrics_text(metrics)
    assert sample(text, "clickstream_etl_passes_total", outcome="loaded") == 1
    assert sample(text, "clickstream_etl_passes_total", outcome="empty") == 1
    assert sample(text, "clickstream_etl_passes_total", outcome="failed") == 1
    assert sample(text, "clickstream_etl_messages_total") == 6
    assert sample(text, "clickstream_etl_rows_loaded_total", table="element_clicks") == 3
    assert sample(text, "clickstream_etl_dead_letters_total", reason="schema_invalid") == 2
    assert sample(text, "clickstream_etl_missing_offsets_total") == 3
    assert sample(text, "clickstream_etl_replayed_passes_total") == 1
    assert sample(text, "clickstream_etl_pass_duration_seconds_count") == 3
    assert sample(text, "clickstream_etl_last_success_timestamp_seconds") == 1000.0


def test_quality_figures_and_freshness_come_from_the_quality_report():
    from datetime import UTC, datetime

    now = [2_000_000_000.0]
    metrics = EtlMetrics(Settings(), registry=None, clock=lambda: now[0])  # type: ignore[arg-type]
    assert math.isnan(sample(metrics_text(metrics), "clickstream_etl_freshness_seconds"))
    hour = datetime(2033, 5, 18, 3, tzinfo=UTC)
    metrics.set_quality(
        QualityReport(
            duplicates=[DuplicateHour("element_click", hour, 10, 3, 1, 1, 2)],
            gaps=[OffsetGap("events", 0, 5, 9)],
            figures={"pageviews": {"open": 1, "timed_out": 2}},
            newest_event=datetime.fromtimestamp(now[0] - 30, UTC),
            dead_letters=4,
        )
    )
    now[0] += 15
    text = metrics_text(metrics)
    assert sample(text, "clickstream_warehouse_duplicate_events", state="absorbed") == 2
    assert sample(text, "clickstream_warehouse_duplicate_events", state="pending") == 1
    assert sample(text, "clickstream_warehouse_redelivered_events") == 1
    assert sample(text, "clickstream_warehouse_missing_offsets") == 4
    assert sample(text, "clickstream_warehouse_dead_letters_waiting") == 4
    assert sample(text, "clickstream_report_figure", report="pageviews", figure="timed_out") == 2
    assert sample(text, "clickstream_report_figure", report="pageviews", figure="open") == 1
    assert sample(text, "clickstream_etl_freshness_seconds") == 45.0


def test_a_failed_pass_is_counted_and_reraised(tmp_path):
    settings = Settings.of(etl_metrics_textfile=str(tmp_path / "etl.prom"))
    metrics = EtlMetrics(settings, registry=None)  # type: ignore[arg-type]
    metrics.after_pass = lambda: metrics.write_textfile(tmp_path / "etl.prom")

    def broken(settings, registry):
        raise RuntimeError("warehouse down")

    with pytest.raises(RuntimeError):
        metrics.instrument(broken)(settings, None)
    text = (tmp_path / "etl.prom").read_text()
    assert sample(text, "clickstream_etl_passes_total", outcome="failed") == 1


def metrics_text(metrics: EtlMetrics) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode()
