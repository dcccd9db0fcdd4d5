"""Fixtures: settings per test, one fixture per real service, and the application chain
``app_settings -> make_app -> app -> client`` (fakes for identity and Kafka) beside its
live twin ``live_settings -> make_live_app -> live_app -> live_client`` (the real services).
Every API a test uses is built by ``make_app`` or ``make_live_app``: a test module that
needs other settings overrides ``app_settings`` or asks the factory for changes.

The real services (Kafka, Redis, the reference auth service) are started by
``make services-up`` (``make test`` does it). Their addresses come from the
usual ``CLICKSTREAM_*`` variables. Each test gets its own Kafka topic, Redis key
prefix and warehouse database, so tests never see each other's data.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import orjson
import pytest
from flask import Flask

import etl.runner
from core.api import create_app
from core.api.extension import pipeline_of
from core.config import Settings
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.host.registry import Registry
from core.log import JsonFormatter
from etl.warehouse import Warehouse
from tests.etl_helpers import RatingPlugin, create_topic
from tests.fakes import Clock, FakeIdentity, FakePublisher, with_ops_probe


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


def _chromium(*flags: str) -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("chromium is not installed: apt-get install -y chromium chromium-driver")
    profile = tempfile.mkdtemp(prefix="clickstream-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, *flags, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_script_timeout(10)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser() -> Iterator:
    """Headless Chromium through selenium, with a profile of its own."""
    yield from _chromium()


#: What a person's desktop Chrome sends: headless Chromium's own User-Agent says
#: HeadlessChrome, which crawlerdetect rightly takes for a bot.
DESKTOP_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


@pytest.fixture
def desktop_browser() -> Iterator:
    """Headless Chromium that calls itself a desktop Chrome in every request (beacons too)."""
    yield from _chromium(f"--user-agent={DESKTOP_CHROME}")


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
def make_app(app_settings: Settings, identity: FakeIdentity, publisher: FakePublisher):
    """``make_app(**setting_changes)``: the API on ``app_settings`` with those changes, identity
    and Kafka faked by the ``identity`` and ``publisher`` fixtures.

    ``plugin_manager=``, ``identity=`` and ``publisher=`` replace what the chain gives, for
    the tests that need plugins of their own or another stand-in.
    """

    def make(*, plugin_manager=None, identity=identity, publisher=publisher, **changes) -> Flask:
        settings = app_settings.replace(**changes) if changes else app_settings
        return create_app(settings, plugin_manager, identity=identity, publisher=publisher)

    return make


@pytest.fixture
def app(make_app):
    """The API with identity and Kafka faked."""
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_client(make_app) -> Callable:
    """``make_client(**setting_changes)``: a client of ``make_app(**setting_changes)`` that
    also answers ``GET /ops-probe``, an operational endpoint of the tests' own."""
    return lambda **changes: with_ops_probe(make_app(**changes)).test_client()


@pytest.fixture
def make_live_app(live_settings: Settings):
    """``make_live_app(**setting_changes)``: the API on the real services, on
    ``live_settings`` with those changes (``plugin_manager=`` for plugins of the test's own).
    Every Kafka producer is closed afterwards."""
    apps: list[Flask] = []

    def make(*, plugin_manager=None, **changes) -> Flask:
        settings = live_settings.replace(**changes) if changes else live_settings
        apps.append(create_app(settings, plugin_manager))
        return apps[-1]

    yield make
    for app in apps:
        pipeline_of(app).publisher.close()


@pytest.fixture
def live_app(make_live_app):
    """The API on the real services."""
    return make_live_app()


@pytest.fixture
def live_client(live_app):
    return live_app.test_client()


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The registry of the installed plugins."""
    return build_registry(make_plugin_manager())


@pytest.fixture
def clock() -> Clock:
    """Time that only moves when the test says so, for what takes a clock (``clock.advance``)."""
    return Clock()


@pytest.fixture
def resolver_settings() -> Settings:
    """Settings of an identity resolver under test: its breaker opens after two failures in a
    row, for 5 s; its Redis keys start with ``t:``."""
    return Settings.of(
        auth_breaker_failures=2,
        auth_breaker_reset_s=5.0,
        redis_prefix="t:",
        jwt_allow_dev_secret=True,
    )


@pytest.fixture
def log_lines():
    """Lines logged by ``core`` and ``etl`` loggers through the JSON formatter, parsed:
    ``log_lines()`` gives those written so far."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger(name) for name in ("core", "etl")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield lambda: [orjson.loads(line) for line in stream.getvalue().splitlines()]
    for logger in loggers:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


@pytest.fixture
def etl_kafka(monkeypatch):
    """Kafka as ``run_pass`` sees it, faked: ``etl_kafka.batches`` are read in turn, commits
    are recorded in ``etl_kafka.commits``.

    ``etl_kafka.reads`` has the (topic, max_records, poll_timeout_s, replay) of every read and
    ``etl_kafka.consumers`` every consumer opened; a read or commit through any other consumer
    than the pass's open one fails the pass. ``etl_kafka.on_commit(batch)``, if set, runs
    before a commit is recorded (and may raise instead).
    """

    class Consumer:
        def __init__(self, kafka, etl) -> None:
            self.group = etl.group
            self.closed = False

        def close(self) -> None:
            self.closed = True

    class Kafka:
        batches: list = []
        commits: list[dict[int, int]] = []
        reads: list[tuple] = []
        consumers: list[Consumer] = []
        on_commit = None

    def join_group(kafka, etl):
        Kafka.consumers.append(Consumer(kafka, etl))
        return Kafka.consumers[-1]

    def read_batch(consumer, topic, max_records, poll_timeout_s, replay, replay_timeout_s):
        assert consumer is Kafka.consumers[-1] and not consumer.closed
        Kafka.reads.append((topic, max_records, poll_timeout_s, replay))
        batch = Kafka.batches.pop(0)
        for read in batch.partitions.values():  # as the real one marks a replayed range
            read.exact = replay.get(read.partition, (None,))[0] == read.expected
        return batch

    def commit(consumer, batch):
        assert consumer is Kafka.consumers[-1] and not consumer.closed
        if Kafka.on_commit is not None:
            Kafka.on_commit(batch)
        Kafka.commits.append(batch.to_commit)
        return batch.to_commit

    monkeypatch.setattr(etl.runner, "join_group", join_group)
    monkeypatch.setattr(etl.runner, "read_batch", read_batch)
    monkeypatch.setattr(etl.runner, "commit", commit)
    return Kafka


SERVER_DSN = os.environ.get("CLICKSTREAM_TEST_SERVER_DSN", "")


@pytest.fixture(
    params=[
        "chdb",
        pytest.param(
            "server",
            marks=pytest.mark.skipif(
                not SERVER_DSN,
                reason="no ClickHouse server: set CLICKSTREAM_TEST_SERVER_DSN=http://user:pass@host:8123",
            ),
        ),
    ]
)
def warehouse_settings(request, settings: Settings) -> Iterator[Settings]:
    """Per-test settings with the warehouse on chDB or, with ``CLICKSTREAM_TEST_SERVER_DSN``,
    on a ClickHouse server (its database dropped afterwards)."""
    if request.param == "server":
        settings = settings.replace(warehouse_dsn=SERVER_DSN)
    yield settings
    if request.param == "server":
        warehouse = Warehouse.from_settings(settings)
        with warehouse.session() as client:
            client.command(f"DROP DATABASE IF EXISTS {warehouse.database}")


@pytest.fixture
def etl_settings(warehouse_settings: Settings, kafka_bootstrap: str) -> Settings:
    """Per-test settings of the ETL on the real broker: a fresh one-partition topic, and the
    warehouse of :func:`warehouse_settings`."""
    settings = warehouse_settings.replace(
        etl_poll_timeout_s=0.2, plugin_values={"page_view_timeout_s": "60"}
    )
    create_topic(settings)
    return settings


@pytest.fixture(scope="module")
def etl_registry() -> Registry:
    """The installed plugins and :class:`tests.etl_helpers.RatingPlugin`, a third-party plugin
    known only to the tests."""
    return build_registry(make_plugin_manager(extra_plugins=[RatingPlugin()]))
