"""Identity resolution against the real Redis and the reference auth service."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from urllib.parse import urljoin

import pytest
import redis
import requests

from auth_service.app import create_app
from core.config import Settings
from core.ingest.identity import Identity, IdentityResolver, TokenRejected
from tests.servers import serve

pytestmark = pytest.mark.integration


def issue_token(verify_url: str, user_id: str, ttl_s: float = 600) -> str:
    url = urljoin(verify_url, "login")
    response = requests.post(url, json={"user_id": user_id, "ttl_s": ttl_s}, timeout=5)
    response.raise_for_status()
    return response.json()["token"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def live(settings: Settings, redis_url: str, auth_service_url: str) -> Settings:
    return settings


@pytest.fixture
def redis_client(live: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(live.redis.url)
    yield client
    keys = list(client.scan_iter(match=f"{live.redis.prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def private_auth_service(settings: Settings) -> Iterator[str]:
    """An auth service of this test's own, so injected faults never reach other tests."""
    with serve(create_app(settings.jwt.secret)) as url:
        yield f"{url}/api/v1/auth/verify"


def test_verified_and_cached_under_the_hash(live, redis_client):
    token = issue_token(live.auth.url, "alice")
    resolver = IdentityResolver.from_settings(live)
    assert resolver.resolve(token) == Identity("alice", "verified")

    digest = hashlib.sha256(token.encode()).hexdigest()
    keys = list(redis_client.scan_iter(match=f"{live.redis.prefix}*"))
    assert keys == [f"{live.redis.prefix}identity:{digest}".encode()]
    assert 0 < redis_client.ttl(keys[0]) <= 600
    for key in keys:
        assert token.encode() not in key
        assert token.encode() not in redis_client.get(key)

    # Another process finds the answer in Redis without asking the service.
    other = IdentityResolver.from_settings(
        live.replace(auth_url=f"http://127.0.0.1:{closed_port()}/")
    )
    assert other.resolve(token) == Identity("alice", "verified")
    assert other.stats()["cache_hits_redis"] == 1


def test_revoked_token_rejected_by_the_service(live, redis_client):
    token = issue_token(live.auth.url, "bob")
    revoke = urljoin(live.auth.url, "revoke")
    headers = {"Authorization": f"Bearer {token}"}
    requests.post(revoke, headers=headers, timeout=5).raise_for_status()

    resolver = IdentityResolver.from_settings(live)
    # The token is still locally valid: the service's answer wins.
    with pytest.raises(TokenRejected):
        resolver.resolve(token)
    key = resolver.cache_key(token)
    assert b"rejected" in redis_client.get(key)
    assert 0 < redis_client.ttl(key) <= live.cache.rejection_ttl_s


def test_auth_service_down_gives_degraded_identity_even_expired(live, redis_client):
    token = issue_token(live.auth.url, "carol", ttl_s=-60)
    down = live.replace(auth_url=f"http://127.0.0.1:{closed_port()}/api/v1/auth/verify")
    resolver = IdentityResolver.from_settings(down)
    assert resolver.resolve(token) == Identity("carol", "degraded")
    assert list(redis_client.scan_iter(match=f"{live.redis.prefix}*")) == []
    assert resolver.check_auth_service()["ok"] is False


def test_forged_token_rejected_while_service_down(live):
    token = issue_token(live.auth.url, "mallory")
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    down = live.replace(auth_url=f"http://127.0.0.1:{closed_port()}/api/v1/auth/verify")
    with pytest.raises(TokenRejected):
        IdentityResolver.from_settings(down).resolve(forged)


def test_redis_down_still_resolves(live):
    token = issue_token(live.auth.url, "dave")
    settings = live.replace(redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    resolver = IdentityResolver.from_settings(settings)
    assert resolver.resolve(token) == Identity("dave", "verified")
    assert resolver.check_cache()["ok"] is False
    assert resolver.stats()["cache_errors"] >= 1


def test_readiness_checks(live):
    resolver = IdentityResolver.from_settings(live)
    assert resolver.check_auth_service() == {
        "ok": True,
        "detail": "HTTP 401",
        "breaker": "closed",
    }
    assert resolver.check_cache() == {"ok": True, "detail": "PONG"}


def test_slow_service_opens_the_breaker(live, private_auth_service, redis_client):
    faults = urljoin(private_auth_service, "/_test/faults")
    requests.post(faults, json={"delay_s": 1.0}, timeout=5).raise_for_status()
    settings = live.replace(
        auth_url=private_auth_service, auth_timeout_s=0.2, auth_breaker_failures=2
    )
    resolver = IdentityResolver.from_settings(settings)
    tokens = [issue_token(private_auth_service, f"user{i}") for i in range(5)]

    for token in tokens[:2]:
        assert resolver.resolve(token).mode == "degraded"
    assert resolver.breaker.state == "open"
    started = time.monotonic()
    for token in tokens[2:]:
        assert resolver.resolve(token).mode == "degraded"
    assert time.monotonic() - started < 0.1
    assert resolver.stats()["auth_calls"] == 2


def test_service_5xx_falls_back_then_recovers(live, private_auth_service, redis_client):
    faults = urljoin(private_auth_service, "/_test/faults")
    requests.post(faults, json={"status": 503}, timeout=5).raise_for_status()
    settings = live.replace(
        auth_url=private_auth_service, auth_breaker_failures=1, auth_breaker_reset_s=0.2
    )
    resolver = IdentityResolver.from_settings(settings)
    token = issue_token(private_auth_service, "erin")
    assert resolver.resolve(token) == Identity("erin", "degraded")
    assert resolver.check_auth_service()["ok"] is False
    assert resolver.breaker.state == "open"

    requests.post(faults, json={}, timeout=5).raise_for_status()
    time.sleep(0.3)
    assert resolver.resolve(token) == Identity("erin", "verified")
    assert resolver.breaker.state == "closed"
