"""API and ETL metrics: what is counted, with which labels, and what a scrape shows."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.api import create_app
from core.api.metrics import ApiMetrics
from core.config import Settings
from etl.ledger import PassResult
from etl.metrics import EtlMetrics
from etl.reports import DuplicateHour, OffsetGap, QualityReport
from tests.fakes import FakeIdentity, FakePublisher


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def example(app, name: str) -> dict:
    return dict(app.extensions["clickstream.pipeline"].registry[name].example)


def test_requests_and_events_are_counted_by_status_route_and_type(app, client, publisher):
    click = {"event": "element_click", "data": example(app, "element_click")}
    assert client.post("/api/v1/events", json=click).status_code == 202
    assert client.post("/api/v1/events", json={**click, "token": "bad"}).status_code == 401
    assert client.post("/api/v1/events", json={"event": "nope", "data": {}}).status_code == 422
    batch = [click, {"event": "nope", "data": {}}, 7, {"event": ["x"], "data": {}}]
    assert client.post("/api/v1/events/batch", json=batch).status_code == 200
    publisher.failing = True
    assert client.post("/api/v1/events", json=click).status_code == 503

    text = client.get("/metrics").text

    assert value(text, "clickstream_events_total", event="element_click", status="202") == 2
    assert value(text, "clickstream_events_total", event="element_click", status="401") == 1
    assert value(text, "clickstream_events_total", event="element_click", status="503") == 1
    assert value(text, "clickstream_events_total", event="unknown", status="422") == 3
    assert value(text, "clickstream_events_total", event="unknown", status="400") == 1
    route = "/api/v1/events"
    for status, count in (("202", 1), ("401", 1), ("422", 1), ("503", 1)):
        labels = {"method": "POST", "endpoint": route, "status": status}
        assert value(text, "clickstream_http_requests_total", **labels) == count
    assert (
        value(
            text,
            "clickstream_http_requests_total",
            method="POST",
            endpoint="/api/v1/events/batch",
            status="200",
        )
        == 1
    )
    assert value(text, "clickstream_http_request_duration_seconds_count", endpoint=route) == 4
    # Two single events and one batch reached the publisher.
    assert value(text, "clickstream_kafka_publish_duration_seconds_count") == 3


def test_unknown_routes_and_invented_methods_do_not_grow_labels(client):
    client.get("/no/such/path/12345")
    client.open("/api/v1/events", method="BREW")
    text = client.get("/metrics").text
    labels = {"method": "GET", "endpoint": "unmatched", "status": "404"}
    assert value(text, "clickstream_http_requests_total", **labels) == 1
    assert (
        value(
            text,
            "clickstream_http_requests_total",
            method="other",
            endpoint="unmatched",
            status="405",
        )
        == 1
    )
    assert "/no/such/path" not in text


def test_the_metrics_endpoint_is_an_operational_endpoint(publisher):
    app = create_app(
        Settings.of(ops_token="s3cret-ops-token"), identity=FakeIdentity(), publisher=publisher
    )
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    answer = client.get("/metrics", headers={"Authorization": "Bearer s3cret-ops-token"})
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain")


class StatsIdentity(FakeIdentity):
    def __init__(self) -> None:
        self.counts = {"verified": 0, "cache_hits_local": 0, "fallbacks": 0}
        self.breaker = type("Breaker", (), {"state": "closed"})()

    def stats(self) -> dict[str, int]:
        return dict(self.counts)


class StatsPublisher(FakePublisher):
    def __init__(self) -> None:
        super().__init__()
        self.counts = {"published": 0, "spool_depth_events": 0, "spool_bytes": 0}

    def stats(self) -> dict[str, int]:
        return dict(self.counts)


def test_resolver_and_publisher_counters_are_mirrored_at_scrape_time():
    metrics = ApiMetrics()
    identity, publisher = StatsIdentity(), StatsPublisher()
    metrics.watch(identity, publisher)
    identity.counts.update(verified=5, cache_hits_local=4, fallbacks=1)
    publisher.counts.update(published=7, spool_depth_events=3, spool_bytes=300)
    identity.breaker.state = "open"
    first = metrics.render()[0].decode()
    identity.counts.update(verified=6)
    publisher.counts.update(published=9, spool_depth_events=0, spool_bytes=0)
    identity.breaker.state = "closed"
    second = metrics.render()[0].decode()

    assert value(first, "clickstream_identity_resolutions_total", mode="verified") == 5
    assert value(first, "clickstream_identity_cache_lookups_total", result="hit_local") == 4
    assert value(first, "clickstream_auth_fallbacks_total") == 1
    assert value(first, "clickstream_kafka_published_total") == 7
    assert value(first, "clickstream_spool_depth_events") == 3
    assert value(first, "clickstream_spool_bytes") == 300
    assert value(first, "clickstream_auth_breaker_open") == 1
    assert value(second, "clickstream_identity_resolutions_total", mode="verified") == 6
    assert value(second, "clickstream_kafka_published_total") == 9
    assert value(second, "clickstream_spool_depth_events") == 0
    assert value(second, "clickstream_auth_breaker_open") == 0


def test_stand_ins_without_stats_are_simply_not_mirrored():
    metrics = ApiMetrics()
    metrics.watch(FakeIdentity(), FakePublisher())
    text = metrics.render()[0].decode()
    assert value(text, "clickstream_kafka_published_total") == 0


def test_gunicorn_workers_add_up_in_multiprocess_mode(tmp_path):
    """Two processes count into one directory; a scrape of either shows the sum."""
    script = textwrap.dedent(
        """
        import os, sys
        from core.serve import multiprocess
        multiprocess.enable()
        from core.api.metrics import ApiMetrics
        metrics = ApiMetrics()
        pid = os.fork()
        for _ in range(2 if pid == 0 else 1):
            metrics.event_done("element_click", 202)
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        multiprocess.worker_exited(pid)
        sys.stdout.write(metrics.render()[0].decode())
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    (tmp_path / "counter_99999.db").write_bytes(b"stale")  # from an earlier run: removed
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert value(out, "clickstream_events_total", event="element_click", status="202") == 3
    assert not (tmp_path / "counter_99999.db").exists()


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
    assert value(text, "clickstream_etl_passes_total", outcome="loaded") == 1
    assert value(text, "clickstream_etl_passes_total", outcome="empty") == 1
    assert value(text, "clickstream_etl_passes_total", outcome="failed") == 1
    assert value(text, "clickstream_etl_messages_total") == 6
    assert value(text, "clickstream_etl_rows_loaded_total", table="element_clicks") == 3
    assert value(text, "clickstream_etl_dead_letters_total", reason="schema_invalid") == 2
    assert value(text, "clickstream_etl_missing_offsets_total") == 3
    assert value(text, "clickstream_etl_replayed_passes_total") == 1
    assert value(text, "clickstream_etl_pass_duration_seconds_count") == 3
    assert value(text, "clickstream_etl_last_success_timestamp_seconds") == 1000.0


def test_quality_figures_and_freshness_come_from_the_quality_report():
    from datetime import UTC, datetime

    now = [2_000_000_000.0]
    metrics = EtlMetrics(Settings(), registry=None, clock=lambda: now[0])  # type: ignore[arg-type]
    assert math.isnan(value(metrics_text(metrics), "clickstream_etl_freshness_seconds"))
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
    assert value(text, "clickstream_warehouse_duplicate_events", state="absorbed") == 2
    assert value(text, "clickstream_warehouse_duplicate_events", state="pending") == 1
    assert value(text, "clickstream_warehouse_redelivered_events") == 1
    assert value(text, "clickstream_warehouse_missing_offsets") == 4
    assert value(text, "clickstream_warehouse_dead_letters_waiting") == 4
    assert value(text, "clickstream_report_figure", report="pageviews", figure="timed_out") == 2
    assert value(text, "clickstream_report_figure", report="pageviews", figure="open") == 1
    assert value(text, "clickstream_etl_freshness_seconds") == 45.0


def test_a_failed_pass_is_counted_and_reraised(tmp_path):
    settings = Settings.of(etl_metrics_textfile=str(tmp_path / "etl.prom"))
    metrics = EtlMetrics(settings, registry=None)  # type: ignore[arg-type]
    metrics.after_pass = lambda: metrics.write_textfile(tmp_path / "etl.prom")

    def broken(settings, registry):
        raise RuntimeError("warehouse down")

    with pytest.raises(RuntimeError):
        metrics.instrument(broken)(settings, None)
    text = (tmp_path / "etl.prom").read_text()
    assert value(text, "clickstream_etl_passes_total", outcome="failed") == 1


def metrics_text(metrics: EtlMetrics) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode()
