"""Per-client rate limits on the event endpoints, counted in Redis: by client IP and by user.

Both are off by default (a trusted network needs none). Each counts in fixed windows of
``rate_limit_window_s``: the IP limit counts requests, before the body is read, so floods
cost little; the user limit counts events of a verified user, after the token is resolved,
so a forged token never spends someone else's budget. Over a limit the answer is 429 with
``Retry-After`` (in a batch, a 429 result for that event). When Redis fails the limits
are skipped (fail open) for a second at a time: events matter more than limits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import redis
from flask import Flask, current_app, request

from core.api.extension import RATE_LIMITER, settings_of
from core.config import LimitsSettings, RedisSettings
from core.ingest import redis_link
from core.ingest.errors import ApiError
from core.ingest.identity import Identity, IdentityResolver

#: Blueprints whose POST requests count against the IP limit.
LIMITED_BLUEPRINTS = frozenset({"events"})


class RateLimiter:
    """Fixed-window counters in Redis, one key per subject and window, expiring on their own."""

    def __init__(
        self,
        limits: LimitsSettings,
        client: redis.Redis,
        key_prefix: str,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._prefix = f"{key_prefix}ratelimit:"
        self._window_s = limits.window_s
        self._client = client
        self._clock = clock
        self._breaker = redis_link.breaker("rate-limit Redis", monotonic)

    @classmethod
    def from_settings(cls, limits: LimitsSettings, redis: RedisSettings) -> RateLimiter:
        """A limiter with its own Redis client: short timeouts, no retries."""
        return cls(limits, redis_link.connect(redis), redis.prefix)

    def retry_after(self, scope: str, subject: str, limit: int, cost: int = 1) -> int | None:
        """Count ``cost`` for ``subject``; the seconds to wait if that passes ``limit``, else None.

        One Redis round trip. None as well when Redis cannot be reached (fail open).
        """
        now = self._clock()
        window = int(now // self._window_s)
        key = f"{self._prefix}{scope}:{window}:{subject}"
        if not self._breaker.allow():
            return None
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.incrby(key, cost)
            pipe.expire(key, self._window_s + 1)
            count, _ = pipe.execute()
        except (redis.RedisError, OSError):
            self._breaker.record_failure()
            return None
        self._breaker.record_success()
        if count <= limit:
            return None
        return max(1, math.ceil((window + 1) * self._window_s - now))


def rate_limiter_of(app: Flask) -> RateLimiter | None:
    """The application's rate limiter (``app.extensions``), or None when no limit is set."""
    return app.extensions[RATE_LIMITER]


def rate_limited(seconds: int, what: str) -> ApiError:
    """The 429 answer, telling the client when to come back."""
    return ApiError(
        429,
        "rate_limited",
        f"Too many {what}; retry in {seconds} s.",
        extra={"retry_after": seconds},
        headers={"Retry-After": str(seconds)},
    )


def client_ip(remote_addr: str | None, forwarded_for: str | None, trusted_hops: int) -> str:
    """The client's address: the peer, or the entry ``trusted_hops`` proxies appended.

    Entries left of the trusted ones were written by the client and prove nothing.
    """
    if trusted_hops and forwarded_for:
        entries = [entry.strip() for entry in forwarded_for.split(",") if entry.strip()]
        if len(entries) >= trusted_hops:
            return entries[-trusted_hops]
    return remote_addr or "unknown"


class UserLimitedIdentity:
    """Resolves identities with ``resolver``, then counts each verified user's events against
    the limit: what the pipeline resolves with when a user limit is set."""

    def __init__(self, resolver: IdentityResolver, limiter: RateLimiter, limit: int) -> None:
        self._resolver = resolver
        self._limiter = limiter
        self._limit = limit

    def resolve(self, token: str | None) -> Identity:
        identity = self._resolver.resolve(token)
        if identity.mode != "anonymous":
            seconds = self._limiter.retry_after("user", identity.user_id, self._limit)
            if seconds is not None:
                raise rate_limited(seconds, "events from this user")
        return identity


def _limit_client_ip() -> None:
    if request.method != "POST" or request.blueprint not in LIMITED_BLUEPRINTS:
        return
    limits = settings_of(current_app).limits
    address = client_ip(
        request.remote_addr, request.headers.get("X-Forwarded-For"), limits.trusted_proxy_hops
    )
    seconds = rate_limiter_of(current_app).retry_after("ip", address, limits.ip_requests)
    if seconds is not None:
        raise rate_limited(seconds, "requests from this address")


def limiter_for(limits: LimitsSettings, redis: RedisSettings) -> RateLimiter | None:
    """The rate limiter ``limits`` ask for, or None when no limit is set."""
    if limits.ip_requests or limits.user_events:
        return RateLimiter.from_settings(limits, redis)
    return None


def limit_users(
    identity: IdentityResolver, limiter: RateLimiter | None, limits: LimitsSettings
) -> IdentityResolver | UserLimitedIdentity:
    """``identity``, counting verified users' events when a user limit is set."""
    if limiter is None or not limits.user_events:
        return identity
    return UserLimitedIdentity(identity, limiter, limits.user_events)


def init_app(app: Flask, limits: LimitsSettings) -> None:
    """Count requests per client address when an IP limit is set; else leave the app as is."""
    if limits.ip_requests:
        app.before_request(_limit_client_ip)
