"""Auth service and Redis faults under traffic, counted from the API to the warehouse.

Faults are injected into an auth service of the test's own (``/_test/faults``) or by
pointing at a closed port; the shared services are never touched. Latency figures are
recorded for docs/reliability.md, not asserted: the breaker is checked by counting calls.
"""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Iterator
from urllib.parse import urljoin

import pytest
import requests

from auth_service.app import create_app as create_auth_app
from core.api.extension import identity_of, settings_of
from core.config import Settings
from tests.reliability import load_and_count, read_event_ids, record, search_event
from tests.servers import serve

pytestmark = pytest.mark.integration

EVENTS = 40


@pytest.fixture
def own_auth_service(live_settings: Settings) -> Iterator[str]:
    """An auth service of this test's own: its verify URL."""
    with serve(create_auth_app(live_settings.jwt.secret)) as url:
        yield f"{url}/api/v1/auth/verify"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def login(verify_url: str, user_id: str) -> str:
    answer = requests.post(urljoin(verify_url, "login"), json={"user_id": user_id}, timeout=5)
    answer.raise_for_status()
    return answer.json()["token"]


def send(app, tokens: list[str]) -> tuple[list[str], list[float], dict]:
    """Post one event per token; (accepted event ids, latencies in s, resolver stats)."""
    client = app.test_client()
    accepted, latencies = [], []
    for sequence, token in enumerate(tokens):
        started = time.perf_counter()
        response = client.post("/api/v1/events", json=search_event(sequence, token))
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 202, response.json
        accepted.append(response.json["event_id"])
    return accepted, latencies, identity_of(app).stats()


def count_and_record(scenario: str, settings: Settings, accepted: list[str], latencies, **notes):
    delivered = read_event_ids(settings.kafka.bootstrap, settings.kafka.topic, len(accepted))
    rows, events = load_and_count(settings)
    assert set(delivered) == set(accepted) and (rows, events) == (len(accepted), len(accepted))
    record(
        scenario,
        sent=len(accepted),
        accepted=len(accepted),
        rows=rows,
        duplicates=len(delivered) - len(set(delivered)),
        lost=len(accepted) - events,
        p50_ms=round(statistics.median(latencies) * 1000, 1),
        max_ms=round(max(latencies) * 1000, 1),
        **notes,
    )


@pytest.mark.parametrize("fault", ["down", "slow"])
def test_auth_service_down_or_slow_falls_back_and_the_breaker_stops_the_waits(
    make_live_app, own_auth_service, fault
):
    tokens = [login(own_auth_service, f"user-{i}") for i in range(EVENTS)]
    if fault == "slow":
        faults = urljoin(own_auth_service, "/_test/faults")
        requests.post(faults, json={"delay_s": 2.0}, timeout=5).raise_for_status()
        url = own_auth_service
    else:
        url = f"http://127.0.0.1:{closed_port()}/api/v1/auth/verify"
    app = make_live_app(auth_url=url, auth_breaker_reset_s=600)
    settings = settings_of(app)

    accepted, latencies, stats = send(app, tokens)

    # Only the calls that opened the breaker paid the timeout; every other event fell back.
    assert stats["auth_calls"] == settings.auth.breaker_failures
    count_and_record(
        f"Auth service {'down' if fault == 'down' else 'answering after 2 s'}",
        settings,
        accepted,
        latencies,
        auth_calls=stats["auth_calls"],
    )


def test_redis_down_accepts_and_resolves_without_the_cache(make_live_app, own_auth_service):
    tokens = [login(own_auth_service, f"user-{i % 5}") for i in range(EVENTS)]
    app = make_live_app(auth_url=own_auth_service, redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    settings = settings_of(app)

    accepted, latencies, stats = send(app, tokens)

    assert stats["cache_errors"] >= 1
    count_and_record("Redis down", settings, accepted, latencies)
