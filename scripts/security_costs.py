"""Print what the bad-input and abuse checks cost per request (figures for docs/security.md).

Run: ``python3 scripts/security_costs.py`` (needs the local Redis for the rate-limit figure).
Best of five runs, in microseconds; the machine's load shows in the figures, so compare the
lines of one run with each other rather than with another machine's.
"""

from __future__ import annotations

import json
import sys
import timeit
from functools import partial
from pathlib import Path

import orjson
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.api import create_app  # noqa: E402
from core.api.events import _refuse_duplicate_keys  # noqa: E402
from core.api.limits import RateLimiter  # noqa: E402
from core.config import Settings  # noqa: E402
from core.host.plugin_manager import build_registry, make_plugin_manager  # noqa: E402
from tests.fakes import FakeIdentity, FakePublisher  # noqa: E402


def best_us(call, number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


def keys_against_separators(body: bytes, parsed) -> bool:
    """The alternative duplicate check: keys in the parsed value against separators in the body.

    Every key of the body is followed by ``"`` or a whitespace, then ``:``; fewer keys in the
    value than such separators means a repeated key (or a separator inside a string).
    """
    separators = sum(body.count(s) for s in (b'":', b" :", b"\t:", b"\n:", b"\r:"))
    keys, stack = 0, [parsed]
    while stack:
        value = stack.pop()
        if type(value) is dict:
            keys += len(value)
            stack.extend(value.values())
        elif type(value) is list:
            stack.extend(value)
    return keys == separators


def main() -> None:
    events = [
        {"event": t.name, "token": None, "data": dict(t.example)}
        for t in build_registry(make_plugin_manager())
    ]
    single = orjson.dumps(events[1])
    batch = orjson.dumps((events * 100)[:500])
    client = create_app(
        Settings(), identity=FakeIdentity(), publisher=FakePublisher()
    ).test_client()
    cases = (
        (f"one event, {len(single)} B", single, "/api/v1/events", 20000, 300),
        (f"batch of 500, {len(batch)} B", batch, "/api/v1/events/batch", 100, 5),
    )
    for name, body, url, number, requests in cases:
        parsed = orjson.loads(body)
        spaced = json.dumps(parsed).encode()  # what Python's json writes: never canonical
        figures = {
            "orjson.loads": best_us(partial(orjson.loads, body), number),
            "duplicate-key check, compact body": best_us(
                partial(_refuse_duplicate_keys, body, parsed), number
            ),
            "duplicate-key check, spaced (stdlib pass)": best_us(
                partial(_refuse_duplicate_keys, spaced, parsed), number
            ),
            "alternative: keys against separators": best_us(
                partial(keys_against_separators, body, parsed), number
            ),
            "whole request (test client, fakes)": best_us(
                partial(client.post, url, data=body, content_type="application/json"), requests
            ),
        }
        print(f"{name}:")
        for label, micros in figures.items():
            print(f"  {label:<42}{micros:10.1f} us")
    settings = Settings.from_env().replace(redis_prefix="security-costs:")
    client_redis = redis.Redis.from_url(settings.redis.url)
    limiter = RateLimiter(settings.limits, client_redis, settings.redis.prefix)
    check = best_us(lambda: limiter.retry_after("ip", "192.0.2.1", 10**9), 2000)
    print(f"rate-limit check, one Redis round trip{check:10.1f} us")
    client_redis.delete(*client_redis.keys("security-costs:ratelimit:*"))


if __name__ == "__main__":
    main()
