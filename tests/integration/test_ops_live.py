"""Operational endpoints safe for the internet by default, and a readiness probe that costs
its dependencies little (issue 13, item 7), on the real Kafka, Redis and an auth service.

By default ``/metrics`` (and any admin endpoint) answers nobody until an operational token or
listener is configured, the readiness probe tells the public only its status (not which
dependency is down, nor whether the auth breaker is open), and a flood of probes costs Kafka
and the auth service one check per ``CLICKSTREAM_OPS_READY_TTL_S``, not one each.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import core.ingest.publisher
from auth_service.app import create_app as create_auth_app
from core.api import create_app
from core.config import Settings
from tests.servers import serve

pytestmark = pytest.mark.integration

OPS_TOKEN = "ops-token-3b8e1f0c5d"


def with_default_ops(settings: Settings) -> Settings:
    """``settings`` with every CLICKSTREAM_OPS_* variable back at its default."""
    env = settings.to_env()
    return Settings.from_env({k: v for k, v in env.items() if not k.startswith("CLICKSTREAM_OPS_")})


class CountingAuthService:
    """The reference auth service, counting the verify calls it gets."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_auth_app(settings.jwt.secret)
        self.verify_calls = 0

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/api/v1/auth/verify":
            self.verify_calls += 1
        return self.app(environ, start_response)


@pytest.fixture
def auth_service(live_settings: Settings) -> Iterator[tuple[str, CountingAuthService]]:
    service = CountingAuthService(live_settings)
    with serve(service) as url:
        yield f"{url}/api/v1/auth/verify", service


@pytest.fixture
def api(live_settings: Settings):
    """``api(settings)``: a test client of the app built from ``settings``, closed afterwards."""
    apps = []

    def build(settings: Settings):
        app = create_app(settings)
        apps.append(app)
        return app.test_client()

    yield build
    for app in apps:
        app.extensions["clickstream.pipeline"].publisher.close()


def test_by_default_metrics_answer_nobody_and_readiness_only_its_status(live_settings, api):
    client = api(with_default_ops(live_settings))
    metrics = client.get("/metrics")
    assert metrics.status_code == 403
    assert metrics.json["error"] == "forbidden"
    assert "CLICKSTREAM_OPS_TOKEN" in metrics.json["message"]
    assert client.get("/health/live").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json == {"status": "ready"}


def test_the_ops_token_opens_metrics_and_readiness_details(live_settings, api):
    client = api(with_default_ops(live_settings).replace(ops_token=OPS_TOKEN))
    authorized = {"Authorization": f"Bearer {OPS_TOKEN}"}
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=authorized).status_code == 200
    assert set(client.get("/health/ready").json) == {"status"}
    detailed = client.get("/health/ready", headers=authorized).json
    assert set(detailed["checks"]) == {"kafka", "redis", "auth_service"}
    assert detailed["checks"]["auth_service"]["breaker"] == "closed"


def test_a_trusted_network_may_open_them(live_settings, api):
    client = api(with_default_ops(live_settings).replace(ops_open=True))
    assert client.get("/metrics").status_code == 200
    assert "checks" in client.get("/health/ready").json


def test_a_flood_of_probes_costs_kafka_and_the_auth_service_one_check(
    live_settings, api, auth_service, monkeypatch
):
    url, service = auth_service
    admins = []

    class CountingAdmin(core.ingest.publisher.KafkaAdminClient):
        def __init__(self, **config) -> None:
            admins.append(config)
            super().__init__(**config)

    monkeypatch.setattr(core.ingest.publisher, "KafkaAdminClient", CountingAdmin)
    client = api(with_default_ops(live_settings).replace(auth_url=url))
    answers = [client.get("/health/ready").status_code for _ in range(20)]

    def probe() -> None:
        answers.append(client.get("/health/ready").status_code)

    threads = [threading.Thread(target=probe) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 30
    assert len(admins) == 1
    assert service.verify_calls == 1
