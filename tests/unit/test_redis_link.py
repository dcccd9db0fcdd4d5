"""How clickstream connects to Redis (``core.ingest.redis_link``): short timeouts, no retries."""

from __future__ import annotations

import pytest
import redis
import requests

from core.ingest.identity import Identity, IdentityResolver
from tests.fakes import NOW, FakeRedis, FakeSession, ok


def test_from_settings_redis_client_has_short_timeouts_and_no_retries(
    resolver_settings, clock, monkeypatch
):
    made = []
    cache = FakeRedis()

    def from_url(url, **kwargs):
        made.append((url, kwargs))
        return cache

    monkeypatch.setattr(redis.Redis, "from_url", from_url)
    monkeypatch.setattr(requests.Session, "request", lambda *a, **k: pytest.fail("real HTTP"))
    settings = resolver_settings.replace(
        redis_url="redis://cache.example:6379/2", redis_timeout_s=0.05
    )
    session = FakeSession(ok(exp=NOW + 600))
    resolver = IdentityResolver.from_settings(
        settings, session=session, clock=clock, monotonic=clock
    )
    ((url, options),) = made
    assert url == "redis://cache.example:6379/2"
    assert options["socket_timeout"] == options["socket_connect_timeout"] == 0.05
    assert options["retry"].get_retries() == 0
    # The options reach the resolver, which caches in that client.
    assert resolver.resolve("tok") == Identity("u1", "verified")
    assert len(session.requests) == 1
    assert cache.ttls_ms == {resolver.cache_key("tok"): 600_000}
