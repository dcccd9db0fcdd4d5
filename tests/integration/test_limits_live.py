"""Rate limits (``core.api.limits``) by client IP and by user, counted in the real Redis, on the
real pipeline."""

from __future__ import annotations

import logging

import pytest
import redis

from core.api import limits
from core.host.plugin_manager import build_registry, make_plugin_manager

URL = "/api/v1/events"
BATCH = "/api/v1/events/batch"
EXAMPLE = dict(
    next(t for t in build_registry(make_plugin_manager()) if t.name == "element_click").example
)
CLOSED_REDIS = "redis://127.0.0.1:1/0"


def click(token: str | None = None) -> dict:
    return {"event": "element_click", "token": token, "data": EXAMPLE}


#: Windows aligned on UTC days: a test never straddles two of them (but at midnight).
DAY_S = 86400


@pytest.fixture
def make_client(make_live_app, live_settings, redis_url):
    """``make_client(**setting_changes)``: a client of the live API, limits counted per day."""
    yield lambda **changes: make_live_app(rate_limit_window_s=DAY_S, **changes).test_client()
    client = redis.Redis.from_url(redis_url)
    keys = client.keys(f"{live_settings.redis.prefix}ratelimit:*")
    if keys:
        client.delete(*keys)


def assert_429(answer) -> None:
    assert answer.status_code == 429, answer.json
    assert answer.json["error"] == "rate_limited"
    assert isinstance(answer.json["message"], str) and answer.json["details"] == {}
    assert 1 <= int(answer.headers["Retry-After"]) <= DAY_S
    assert answer.json["retry_after"] == int(answer.headers["Retry-After"])


def test_the_ip_limit_refuses_requests_over_it(make_client) -> None:
    client = make_client(rate_limit_ip_requests=3)
    assert [client.post(URL, json=click()).status_code for _ in range(3)] == [202] * 3
    assert_429(client.post(URL, json=click()))
    assert_429(client.post(BATCH, json=[click()]))
    assert client.get("/health/live").status_code == 200
    assert client.options(URL, headers={"Origin": "https://x.example"}).status_code == 200


def test_each_ip_has_its_own_budget_behind_a_trusted_proxy(make_client) -> None:
    client = make_client(rate_limit_ip_requests=1, trusted_proxy_hops=1)

    def send(forwarded_for: str) -> int:
        return client.post(
            URL, json=click(), headers={"X-Forwarded-For": forwarded_for}
        ).status_code

    assert send("203.0.113.1") == 202
    assert send("203.0.113.2") == 202
    assert send("203.0.113.1") == 429
    # A client cannot escape by prepending addresses of its own.
    assert send("198.51.100.7, 203.0.113.1") == 429


def test_the_user_limit_counts_each_verified_users_events(make_client, login) -> None:
    client = make_client(rate_limit_user_events=2)
    alice, bob = login("alice-rl"), login("bob-rl")
    assert [client.post(URL, json=click(alice)).status_code for _ in range(2)] == [202, 202]
    assert_429(client.post(URL, json=click(alice)))
    assert client.post(URL, json=click(bob)).status_code == 202
    assert client.post(URL, json=click()).status_code == 202  # anonymous: the IP limit's job
    assert client.post(URL, json=click("forged.token.value")).status_code == 401


def test_a_batch_over_the_user_limit_answers_429_per_event(make_client, login) -> None:
    client = make_client(rate_limit_user_events=2)
    carol, dave = login("carol-rl"), login("dave-rl")
    answer = client.post(BATCH, json=[click(carol), click(dave), click(carol), click(carol)])
    assert answer.status_code == 200
    results = answer.json["results"]
    assert [result["status"] for result in results] == [202, 202, 202, 429]
    assert results[3]["error"] == "rate_limited" and results[3]["retry_after"] >= 1


def test_a_forged_token_does_not_spend_the_real_users_budget(make_client, login) -> None:
    client = make_client(rate_limit_user_events=1)
    token = login("erin-rl")
    assert client.post(URL, json=click(token[:-4] + "AAAA")).status_code == 401
    assert client.post(URL, json=click(token)).status_code == 202


def test_limits_fail_open_when_redis_is_down(make_client, login, caplog) -> None:
    caplog.set_level(logging.WARNING)
    client = make_client(redis_url=CLOSED_REDIS, rate_limit_ip_requests=1, rate_limit_user_events=1)
    token = login("frank-rl")
    assert [client.post(URL, json=click(token)).status_code for _ in range(3)] == [202] * 3
    assert any("rate-limit Redis" in record.getMessage() for record in caplog.records)


def test_windows_expire_and_restart(live_settings, redis_url) -> None:
    now = [1_000_000.0]
    client = redis.Redis.from_url(redis_url)
    limiter = limits.RateLimiter(
        live_settings.replace(rate_limit_window_s=10).limits,
        client,
        live_settings.redis.prefix,
        clock=lambda: now[0],
    )
    assert limiter.retry_after("ip", "192.0.2.1", limit=2, cost=2) is None
    now[0] += 3
    assert limiter.retry_after("ip", "192.0.2.1", limit=2) == 7
    keys = client.keys(f"{live_settings.redis.prefix}ratelimit:*")
    assert len(keys) == 1 and 0 < client.ttl(keys[0]) <= 11
    now[0] += 7
    assert limiter.retry_after("ip", "192.0.2.1", limit=2) is None
    client.delete(*client.keys(f"{live_settings.redis.prefix}ratelimit:*"))
