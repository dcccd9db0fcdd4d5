"""Kafka faults on a private broker: outages under traffic, a full spool, kill -9, ETL restarts.

The broker is this module's own (``scripts/services.sh`` with other ports and a var
directory under a tmp dir), so stopping it never disturbs the shared one on 9092. The
API runs as a real gunicorn server in a subprocess, so ``kill -9`` kills a real process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from core.config import PROJECT_ROOT, Settings
from core.ingest.producers import CLIENTS, CONFLUENT, KAFKA_PYTHON
from etl.reports import consumer_lag
from tests.etl_helpers import create_topic, envelope, produce, query
from tests.reliability import Traffic, load_and_count, read_event_ids, record
from tests.servers import subprocess_env

pytestmark = pytest.mark.integration

SERVICES = str(PROJECT_ROOT / "scripts" / "services.sh")
SLOW = pytest.mark.skipif(
    not os.environ.get("CLICKSTREAM_TEST_SLOW"),
    reason="minute-long fault: set CLICKSTREAM_TEST_SLOW=1 (make test and make reliability do)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateKafka:
    """A broker of this test session's own, which the tests may stop and start."""

    def __init__(self, var_dir: Path) -> None:
        self.bootstrap = f"127.0.0.1:{free_port()}"
        self.env = {
            **os.environ,
            "CLICKSTREAM_KAFKA_BOOTSTRAP": self.bootstrap,
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "CLICKSTREAM_VAR_DIR": str(var_dir),
        }
        # The jars are fetched once for the shared broker; this one borrows them.
        (var_dir / "kafka").mkdir(parents=True)
        shared = PROJECT_ROOT / "var" / "kafka" / "lib"
        if shared.is_dir():
            (var_dir / "kafka" / "lib").symlink_to(shared)

    def _run(self, command: str) -> None:
        subprocess.run([SERVICES, command, "kafka"], env=self.env, check=True, capture_output=True)

    def up(self) -> None:
        self._run("up")

    def down(self) -> None:
        self._run("down")


@pytest.fixture(scope="session")
def private_kafka(tmp_path_factory) -> Iterator[PrivateKafka]:
    kafka = PrivateKafka(tmp_path_factory.mktemp("private-kafka"))
    kafka.up()
    yield kafka
    kafka.down()


@pytest.fixture
def fault_settings(settings: Settings, private_kafka, redis_url, auth_service_url, tmp_path):
    """Per-test settings on the private broker, with a short acknowledgement timeout."""
    settings = settings.replace(
        kafka_bootstrap=private_kafka.bootstrap,
        kafka_ack_timeout_s=1.0,
        spool_dir=str(tmp_path / "spool"),
        spool_replay_interval_s=0.2,
        etl_poll_timeout_s=0.2,
    )
    private_kafka.up()  # in case an earlier test failed while it was down
    create_topic(settings)
    return settings


class ApiServer:
    """gunicorn serving the API in a process group of its own."""

    def __init__(self, settings: Settings, workers: int, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = subprocess_env(settings, api_port=self.port, api_workers=workers, ops_port=0)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "core/serve/gunicorn_config.py"]
            + ["core.serve.wsgi:app"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab"),
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/health/live", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError("the API did not start")

    def ready(self) -> dict:
        """The readiness answer, with its HTTP status under ``http``."""
        response = requests.get(f"{self.url}/health/ready", timeout=10)
        return {**response.json(), "http": response.status_code}

    def kill(self) -> None:
        """``kill -9`` of the master and every worker at once."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


@pytest.fixture
def start_api(tmp_path) -> Iterator:
    """``start_api(settings, workers=1)``: a running server; its log is ``<tmp_path>/api.log``."""
    servers: list[ApiServer] = []

    def start(settings: Settings, workers: int = 1) -> ApiServer:
        servers.append(ApiServer(settings, workers, tmp_path / "api.log"))
        return servers[-1]

    yield start
    for server in servers:
        server.kill()


def wait_until(condition, timeout_s: float = 60, every_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"not true after {timeout_s} s: {condition}")


def stored(settings: Settings) -> tuple[int, set[str]]:
    """ETL everything waiting; (rows after deduplication, their event ids)."""
    rows, _ = load_and_count(settings)
    ids = {str(row[0]) for row in query(settings, "SELECT event_id FROM {db}.search_filters")}
    return rows, ids


def first_seen(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


@pytest.fixture(params=CLIENTS)
def kafka_client(request) -> str:
    """Each producer the API can publish with (confluent only where it is installed)."""
    if request.param == CONFLUENT:
        pytest.importorskip("confluent_kafka")
    return request.param


@pytest.mark.parametrize("outage_s", [5, pytest.param(60, marks=SLOW)], ids=["5s", "60s"])
def test_kafka_down_under_traffic_spools_and_replays_in_order(
    fault_settings, private_kafka, start_api, outage_s, kafka_client
):
    fault_settings = fault_settings.replace(kafka_client=kafka_client)
    api = start_api(fault_settings)
    with Traffic(api.url) as traffic:
        traffic.wait_for(20)
        private_kafka.down()
        stopped = time.monotonic()
        degraded = wait_until(
            lambda: (r := api.ready())["status"] == "degraded" and r["spool"]["depth_events"] and r
        )
        time.sleep(max(0.0, outage_s - (time.monotonic() - stopped)))
        spooled_at_restart = api.ready()["spool"]["depth_events"]
        private_kafka.up()
        wait_until(lambda: api.ready()["status"] == "ready")
        traffic.wait_for(len(traffic.accepted) + 20)

    assert degraded["http"] == 200 and degraded["checks"]["kafka"]["ok"] is False
    assert spooled_at_restart > 0
    assert dict(traffic.statuses) == {202: traffic.sent}  # never a refusal, never a 5xx
    delivered = read_event_ids(private_kafka.bootstrap, fault_settings.kafka.topic, traffic.sent)
    assert first_seen(delivered) == traffic.accepted  # each event once, in the order sent
    rows, ids = stored(fault_settings)
    assert ids == set(traffic.accepted) and rows == len(ids)
    record(
        f"Kafka stopped {outage_s} s under traffic"
        + ("" if kafka_client == KAFKA_PYTHON else f" ({kafka_client})"),
        sent=traffic.sent,
        accepted=len(traffic.accepted),
        rows=rows,
        duplicates=len(delivered) - len(set(delivered)),
        lost=len(set(traffic.accepted) - ids),
        spooled=spooled_at_restart,
    )


def test_a_full_spool_answers_503_with_retry_after_and_drops_nothing(
    fault_settings, private_kafka, start_api
):
    settings = fault_settings.replace(spool_max_bytes=8192, max_body_bytes=1024)
    api = start_api(settings)
    private_kafka.down()
    with Traffic(api.url, pause_s=0) as traffic:
        wait_until(lambda: traffic.statuses[503] >= 3)
        unready = api.ready()
    private_kafka.up()
    wait_until(lambda: api.ready()["status"] == "ready")

    assert traffic.retry_after and all(int(value) > 0 for value in traffic.retry_after)
    assert (unready["http"], unready["status"], unready["spool"]["ok"]) == (
        503,
        "unavailable",
        False,
    )
    assert set(traffic.statuses) <= {202, 503}, traffic.statuses
    delivered = read_event_ids(private_kafka.bootstrap, settings.kafka.topic, len(traffic.accepted))
    assert first_seen(delivered) == traffic.accepted  # every 202, and nothing refused
    rows, ids = stored(settings)
    assert ids == set(traffic.accepted)
    record(
        "Spool full while Kafka is down (503 + Retry-After)",
        sent=traffic.sent,
        accepted=len(traffic.accepted),
        rows=rows,
        duplicates=len(delivered) - len(set(delivered)),
        lost=len(set(traffic.accepted) - ids),
        refused_503=traffic.statuses[503],
    )


def test_kill_9_of_the_api_with_a_spool_then_restart_delivers_every_202(
    fault_settings, private_kafka, start_api
):
    api = start_api(fault_settings, workers=2)
    with Traffic(api.url, pause_s=0) as traffic:
        traffic.wait_for(30)  # these were answered after Kafka's acknowledgement
        acknowledged = len(traffic.accepted)
        # Kafka stops under traffic: the events in flight go unacknowledged, then to the spool.
        private_kafka.down()
        traffic.wait_for(acknowledged + 60)
        api.kill()
    spool_root = Path(fault_settings.spool.dir)
    assert any(spool_root.glob("*/*.seg")), "the killed workers left their spools"

    private_kafka.up()
    restarted = start_api(fault_settings, workers=2)
    # A worker adopts orphaned spools on its first request, then replays them.
    wait_until(lambda: restarted.ready()["status"] == "ready" and not _spooled_bytes(spool_root))
    delivered = read_event_ids(
        private_kafka.bootstrap, fault_settings.kafka.topic, len(traffic.accepted)
    )

    assert acknowledged >= 30 and len(traffic.accepted) >= acknowledged + 60
    # Spooled events are 202 too; only the request cut by the kill has no answer.
    assert all(status in (202, 503) or "no answer" in str(status) for status in traffic.statuses)
    assert set(traffic.accepted) <= set(delivered)
    assert first_seen(delivered)[:acknowledged] == traffic.accepted[:acknowledged]
    rows, ids = stored(fault_settings)
    assert set(traffic.accepted) <= ids and rows == len(ids)
    record(
        "API killed with kill -9 while spooling, restarted",
        sent=traffic.sent,
        accepted=len(traffic.accepted),
        rows=rows,
        duplicates=len(delivered) - len(set(delivered)),
        lost=len(set(traffic.accepted) - ids),
        unanswered=sum(n for status, n in traffic.statuses.items() if status not in (202, 503)),
    )


def _spooled_bytes(root: Path) -> int:
    return sum(segment.stat().st_size for segment in root.glob("*/*.seg"))


def test_kafka_restarted_while_the_etl_consumes_resumes_from_committed_offsets(
    fault_settings, private_kafka
):
    settings = fault_settings.replace(etl_max_records=25, etl_interval_s=0.1)
    first = [
        envelope("search_filter", {"search_query": f"a{i}", "filters": ""}) for i in range(150)
    ]
    produce(settings, first)
    etl = subprocess.Popen(
        [sys.executable, "-m", "etl.cli", "etl"],
        cwd=PROJECT_ROOT,
        env=subprocess_env(settings, etl_metrics_port=0),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: (lag := consumer_lag(settings)) and 0 < lag[0] < len(first))
        private_kafka.down()
        time.sleep(2)
        private_kafka.up()
        second = [
            envelope("search_filter", {"search_query": f"b{i}", "filters": ""}) for i in range(50)
        ]
        produce(settings, second)
        wait_until(lambda: consumer_lag(settings) == {0: 0}, timeout_s=120)
    finally:
        etl.send_signal(signal.SIGTERM)
        _, stderr = etl.communicate(timeout=60)

    assert etl.returncode == 0, stderr[-2000:]
    sent = {m["event_id"] for m in first + second}
    count, distinct = query(
        settings, "SELECT count(), uniqExact(event_id) FROM {db}.search_filters"
    )[0]
    assert (count, distinct) == (len(sent), len(sent))  # every event once: no gap, no double
    record(
        "Kafka restarted while the ETL consumes",
        sent=len(sent),
        accepted=len(sent),
        rows=count,
        duplicates=count - distinct,
        lost=len(sent) - distinct,
        stored_twice=count - distinct,
    )
