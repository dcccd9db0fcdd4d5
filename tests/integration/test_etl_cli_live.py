"""The ``clickstream etl`` command (``etl.cli``) on the real Kafka broker and warehouse: passes
on schedule, stopped by SIGTERM; a failed ``--once`` exits non-zero."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from core.config import env_name
from etl.reports import consumer_lag
from tests.etl_helpers import count, envelope, etl_env, produce

pytestmark = pytest.mark.integration


def test_the_etl_command_runs_on_schedule_and_stops_on_sigterm(etl_settings, etl_registry):
    search = etl_registry["search_filter"]
    produce(etl_settings, [envelope("search_filter", dict(search.example)) for _ in range(3)])
    env = etl_env(etl_settings, etl_interval_s="0.5")
    etl = subprocess.Popen(
        [sys.executable, "-m", "etl.cli", "etl"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(lambda: consumer_lag(etl_settings) == {0: 0})
        produce(etl_settings, [envelope("search_filter", dict(search.example))])
        _wait_for(lambda: consumer_lag(etl_settings) == {0: 0})
    finally:
        etl.send_signal(signal.SIGTERM)
        _, stderr = etl.communicate(timeout=30)

    assert etl.returncode == 0, stderr[-2000:]
    assert "etl.stopped" in stderr
    assert count(etl_settings, "search_filters") == (4, 4)
    failing = subprocess.run(
        [sys.executable, "-m", "etl.cli", "etl", "--once"],
        env={**env, env_name("warehouse_dsn"): "http://127.0.0.1:9/"},
        capture_output=True,
    )
    assert failing.returncode == 1


def _wait_for(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)
