"""Fixtures: settings per test, one fixture per real service, and the application chain
``app_settings -> app -> client`` (fakes for identity and Kafka) beside its live twin
``live_settings -> live_app -> live_client`` (the real services).

The real services (Kafka, Redis, the reference auth service) are started by
``make services-up`` (``make test`` does it). Their addresses come from the
usual ``CLICKSTREAM_*`` variables. Each test gets its own Kafka topic, Redis key
prefix and warehouse database, so tests never see each other's data.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from core.api import create_app
from core.config import Settings
from tests.fakes import FakeIdentity, FakePublisher


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _require(name: str, host: str, port: int) -> None:
    if not _reachable(host, port):
        pytest.fail(f"{name} is not reachable at {host}:{port}: run `make services-up` first")


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory) -> Settings:
    """Settings from the environment, the warehouse and the disk spool in per-session directories,
    and the development flags of a developer's machine.

    chDB opens one data directory per process, so every test of a session shares
    this directory and gets a database of its own instead.
    """
    settings = Settings.from_env().replace(
        spool_dir=str(tmp_path_factory.mktemp("spool")),
        # The reference auth service signs with the development secret (docs/security.md).
        jwt_allow_dev_secret=True,
        # A developer's machine is a trusted network: metrics and readiness details open.
        ops_open=True,
    )
    if settings.warehouse.dsn.startswith("chdb://"):
        settings = settings.replace(warehouse_dsn=f"chdb://{tmp_path_factory.mktemp('warehouse')}")
    return settings


@pytest.fixture
def unique() -> str:
    """A short random suffix for names private to one test."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(base_settings: Settings, unique: str) -> Settings:
    """Settings private to one test: its own topic, Redis prefix, database, consumer group."""
    return base_settings.replace(
        kafka_topic=f"test-{unique}",
        redis_prefix=f"test:{unique}:",
        warehouse_database=f"test_{unique}",
        etl_group=f"test-etl-{unique}",
    )


@pytest.fixture(scope="session")
def kafka_bootstrap(base_settings: Settings) -> str:
    """The real Kafka broker's bootstrap address."""
    host, _, port = base_settings.kafka.bootstrap.split(",")[0].rpartition(":")
    _require("Kafka", host, int(port))
    return base_settings.kafka.bootstrap


@pytest.fixture(scope="session")
def redis_url(base_settings: Settings) -> str:
    """The real Redis server's URL."""
    url = urlparse(base_settings.redis.url)
    _require("Redis", url.hostname or "127.0.0.1", url.port or 6379)
    return base_settings.redis.url


@pytest.fixture(scope="session")
def auth_service_url(base_settings: Settings) -> str:
    """The reference auth service's verify endpoint."""
    url = urlparse(base_settings.auth.url)
    _require("the auth service", url.hostname or "127.0.0.1", url.port or 80)
    return base_settings.auth.url


@pytest.fixture
def live_settings(settings: Settings, kafka_bootstrap: str, redis_url: str, auth_service_url: str):
    """Per-test settings, after checking that every real service is up."""
    return settings


@pytest.fixture
def read_topic(kafka_bootstrap: str):
    """``read_topic(topic, expected)``: a topic's (key, value) pairs once ``expected`` arrived."""
    from kafka import KafkaConsumer

    def read(topic: str, expected: int, timeout_s: float = 20.0) -> list[tuple[str, dict]]:
        import time

        import orjson

        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=500,
        )
        records: list[tuple[str, dict]] = []
        deadline = time.monotonic() + timeout_s
        try:
            while len(records) < expected and time.monotonic() < deadline:
                records.extend((r.key.decode(), orjson.loads(r.value)) for r in consumer)
        finally:
            consumer.close()
        return records

    return read


@pytest.fixture
def login(auth_service_url: str):
    """``login(user_id, ttl_s=600)``: a real token from the reference auth service."""
    import requests

    base = auth_service_url.rsplit("/", 1)[0]

    def issue(user_id: str, ttl_s: int = 600) -> str:
        answer = requests.post(
            f"{base}/login", json={"user_id": user_id, "ttl_s": ttl_s}, timeout=5
        )
        answer.raise_for_status()
        return answer.json()["token"]

    return issue


CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the networking flags a closed network floods Chromium with refused connections.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture
def browser() -> Iterator:
    """Headless Chromium through selenium, with a profile of its own."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("chromium is not installed: apt-get install -y chromium chromium-driver")
    profile = tempfile.mkdtemp(prefix="clickstream-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_script_timeout(10)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def publisher() -> FakePublisher:
    """Kafka faked: what the application published, in ``publisher.sent``."""
    return FakePublisher()


@pytest.fixture
def identity() -> FakeIdentity:
    """The identity resolver faked: ``user:<id>`` tokens are verified, others rejected."""
    return FakeIdentity()


@pytest.fixture
def app_settings() -> Settings:
    """The settings of ``app``; a test module overrides this fixture to change them."""
    return Settings.of(ops_open=True)


@pytest.fixture
def app(app_settings: Settings, identity: FakeIdentity, publisher: FakePublisher):
    """The API with identity and Kafka faked."""
    return create_app(app_settings, identity=identity, publisher=publisher)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def live_app(live_settings: Settings):
    """The API on the real services; its Kafka producer is closed afterwards."""
    app = create_app(live_settings)
    yield app
    app.extensions["clickstream.pipeline"].publisher.close()


@pytest.fixture
def live_client(live_app):
    return live_app.test_client()
