"""How clickstream talks to Redis: short timeouts, no retries, and after an error the caller
skips Redis for a second rather than paying a timeout per event (a breaker)."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.config import RedisSettings
from core.ingest.breaker import CircuitBreaker

#: After a Redis error, how long callers skip Redis.
RETRY_S = 1.0


def connect(settings: RedisSettings) -> redis.Redis:
    """A client of ``settings.url`` that fails fast: one try, within ``settings.timeout_s``."""
    return redis.Redis.from_url(
        settings.url,
        socket_timeout=settings.timeout_s,
        socket_connect_timeout=settings.timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


def breaker(name: str, monotonic: Callable[[], float] = time.monotonic) -> CircuitBreaker:
    """A breaker that opens at the first Redis error and lets a trial through after a second."""
    return CircuitBreaker(1, RETRY_S, monotonic, name=name)
