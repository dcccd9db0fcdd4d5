"""The in-process cache of the auth service's answers (``core.ingest.token_cache``), as the
identity resolver uses it: hot tokens served from memory, within their expiry and the local
lifetime, as many as its size."""

from __future__ import annotations

import pytest

from tests.fakes import NOW, FakeRedis, FakeSession, make_resolver, ok


def test_local_cache_serves_hot_tokens_and_respects_expiry(resolver_settings, clock):
    cache = FakeRedis()
    session = FakeSession(ok(exp=NOW + 10))
    resolver = make_resolver(resolver_settings, session, clock, cache)
    for _ in range(5):
        resolver.resolve("tok")
    assert len(session.requests) == 1
    assert resolver.stats()["cache_hits_local"] == 4
    clock.advance(11)
    resolver.resolve("tok")
    assert len(session.requests) == 2


def test_local_cache_lifetime_is_bounded(resolver_settings, clock):
    cache = FakeRedis()
    session = FakeSession(ok(exp=NOW + 3600))
    resolver = make_resolver(resolver_settings, session, clock, cache, cache_local_ttl_s=5)
    resolver.resolve("tok")
    cache.data.clear()  # as an operator deleting the key would
    clock.advance(6)
    resolver.resolve("tok")
    assert len(session.requests) == 2


@pytest.mark.parametrize("size", [1, 2])
def test_local_cache_holds_as_many_tokens_as_its_size(resolver_settings, clock, size):
    session = FakeSession(ok())
    resolver = make_resolver(resolver_settings, session, clock, cache_local_size=size)
    tokens = [f"tok-{i}" for i in range(size)]
    for token in tokens + tokens:
        resolver.resolve(token)
    assert len(session.requests) == size


def test_local_cache_is_bounded(resolver_settings, clock):
    session = FakeSession(ok())
    resolver = make_resolver(resolver_settings, session, clock, cache_local_size=2)
    for token in ("a", "b", "c", "a"):
        resolver.resolve(token)
    assert len(session.requests) == 4
