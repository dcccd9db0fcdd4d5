"""Metrics and request ids on the real services: the API (in-process, under gunicorn), the ETL."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from core.host.plugin_manager import build_registry, make_plugin_manager
from core.log import logconfig_dict
from etl.metrics import EtlMetrics
from etl.runner import run_pass

ROOT = Path(__file__).resolve().parents[2]


def value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout_s: float = 60.0, every_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = check()
        except (requests.RequestException, OSError):
            result = None
        if result or time.monotonic() > deadline:
            return result
        time.sleep(every_s)


@pytest.fixture
def app(make_live_app, tmp_path):
    return make_live_app(spool_dir=str(tmp_path / "spool"))


def examples(app) -> dict[str, dict]:
    return {t.name: dict(t.example) for t in app.extensions["clickstream.pipeline"].registry}


def test_api_and_etl_metrics_move_with_the_traffic(app, live_settings, login, caplog):
    client = app.test_client()
    data = examples(app)
    token = login("user-metrics")
    for _ in range(3):
        body = {"event": "element_click", "token": token, "data": data["element_click"]}
        assert client.post("/api/v1/events", json=body).status_code == 202
    batch = [
        {"event": "search_filter", "data": data["search_filter"]},
        {"event": "search_filter", "data": data["search_filter"]},
        {"event": "search_filter", "data": {}},
    ]
    answer = client.post("/api/v1/events/batch", json=batch, headers={"X-Request-ID": "batch-7"})
    assert answer.json["accepted"] == 2 and answer.headers["X-Request-ID"] == "batch-7"

    api = client.get("/metrics").text
    assert value(api, "clickstream_events_total", event="element_click", status="202") == 3
    assert value(api, "clickstream_events_total", event="search_filter", status="202") == 2
    assert value(api, "clickstream_events_total", event="search_filter", status="422") == 1
    assert value(api, "clickstream_kafka_published_total") == 5
    assert value(api, "clickstream_kafka_publish_duration_seconds_count") == 4
    verified = value(api, "clickstream_identity_resolutions_total", mode="verified")
    assert verified == 3
    lookups = sum(
        value(api, "clickstream_identity_cache_lookups_total", result=result)
        for result in ("hit_local", "hit_redis", "miss")
    )
    assert lookups >= 3 and value(api, "clickstream_auth_service_calls_total") >= 1
    assert value(api, "clickstream_spool_depth_events") == 0

    registry = build_registry(make_plugin_manager())
    etl = EtlMetrics(live_settings, registry)
    with caplog.at_level(logging.DEBUG, logger="etl.events"):
        result = etl.instrument(run_pass)(live_settings, registry)
    assert result.rows == {"element_clicks": 3, "search_filters": 2}
    from prometheus_client import generate_latest

    text = generate_latest(etl.registry).decode()
    assert value(text, "clickstream_etl_rows_loaded_total", table="element_clicks") == 3
    assert value(text, "clickstream_etl_rows_loaded_total", table="search_filters") == 2
    assert value(text, "clickstream_etl_passes_total", outcome="loaded") == 1
    assert value(text, "clickstream_etl_consumer_lag_messages", partition="0") == 0
    assert value(text, "clickstream_warehouse_missing_offsets") == 0
    assert value(text, "clickstream_warehouse_duplicate_events", state="pending") == 0
    freshness = value(text, "clickstream_etl_freshness_seconds")
    assert not math.isnan(freshness) and freshness >= 0
    traced = [r for r in caplog.records if getattr(r, "request_id", None) == "batch-7"]
    assert sorted(r.event_id for r in traced) == sorted(
        r["event_id"] for r in answer.json["results"] if r["status"] == 202
    )


def test_under_gunicorn_workers_add_up_and_one_request_id_joins_api_and_etl_logs(
    live_app, live_settings, tmp_path
):
    """Two gunicorn workers and the `clickstream etl` process, as in production."""
    port, etl_port = free_port(), free_port()
    (tmp_path / "metrics").mkdir()
    log_config = tmp_path / "logging.json"
    log_config.write_text(json.dumps(logconfig_dict(live_settings.log)))
    env = {
        **os.environ,
        "CLICKSTREAM_API_PORT": str(port),
        "CLICKSTREAM_API_WORKERS": "2",
        "CLICKSTREAM_API_THREADS": "2",
        "CLICKSTREAM_KAFKA_TOPIC": live_settings.kafka.topic,
        "CLICKSTREAM_REDIS_PREFIX": live_settings.redis.prefix,
        "CLICKSTREAM_SPOOL_DIR": str(tmp_path / "spool"),
        "CLICKSTREAM_WAREHOUSE_DSN": f"chdb://{tmp_path / 'warehouse'}",
        "CLICKSTREAM_WAREHOUSE_DATABASE": live_settings.warehouse.database,
        "CLICKSTREAM_ETL_GROUP": live_settings.etl.group,
        "CLICKSTREAM_ETL_METRICS_PORT": str(etl_port),
        "CLICKSTREAM_ETL_INTERVAL_S": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "CLICKSTREAM_JWT_ALLOW_DEV_SECRET": "true",
        "CLICKSTREAM_OPS_OPEN": "true",
    }
    api_log = (tmp_path / "api.log").open("w")
    api = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "core/serve/gunicorn_config.py"]
        + ["--log-config-json", str(log_config), "core.serve.wsgi:app"],
        cwd=ROOT,
        env=env,
        stderr=api_log,
        stdout=api_log,
    )
    etl = None
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: requests.get(f"{base}/health/live", timeout=1).ok)
        data = examples(live_app)["element_click"]
        sent = []
        for index in range(20):
            headers = {"X-Request-ID": "trace-gunicorn-1"} if index == 7 else {}
            answer = requests.post(
                f"{base}/api/v1/events",
                json={"event": "element_click", "data": data},
                headers={"Connection": "close", **headers},
                timeout=10,
            )
            assert answer.status_code == 202
            sent.append(answer.json()["event_id"])
        # Each scrape is answered by either worker; each must show both workers' events.
        for _ in range(6):
            scrape = requests.get(f"{base}/metrics", headers={"Connection": "close"}, timeout=10)
            assert (
                value(scrape.text, "clickstream_events_total", event="element_click", status="202")
                == 20
            )

        etl = subprocess.Popen(
            [sys.executable, "-m", "etl.cli", "etl"],
            cwd=ROOT,
            env={**env, "CLICKSTREAM_LOG_LEVEL": "DEBUG"},
            stderr=subprocess.PIPE,
            text=True,
        )
        etl_url = f"http://127.0.0.1:{etl_port}/metrics"
        loaded = wait_until(
            lambda: (
                value(
                    requests.get(etl_url, timeout=2).text,
                    "clickstream_etl_rows_loaded_total",
                    table="element_clicks",
                )
                == 20
            ),
            timeout_s=120,
        )
        assert loaded
    finally:
        if etl is not None:
            etl.send_signal(signal.SIGTERM)
        api.send_signal(signal.SIGTERM)
        api.wait(timeout=30)
        api_log.close()
    etl_lines = [
        json.loads(line)
        for line in etl.communicate(timeout=60)[1].splitlines()
        if line.startswith("{")
    ]
    api_lines = [
        json.loads(line)
        for line in (tmp_path / "api.log").read_text().splitlines()
        if line.startswith("{")
    ]

    [request_line] = [line for line in api_lines if line.get("request_id") == "trace-gunicorn-1"]
    assert request_line["message"] == "http.request" and request_line["status"] == 202
    [event_line] = [line for line in etl_lines if line.get("request_id") == "trace-gunicorn-1"]
    assert event_line["message"] == "etl.event_loaded" and event_line["event_id"] == sent[7]
