"""Who sent an event: the auth service's answer, cached in Redis, with a local JWT fallback.

The contract with the auth service, the caching rules and the fallback are described in
``docs/auth-service.md``. The token itself never reaches a log, an exception or a cache key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jwt
import redis
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from redis.backoff import NoBackoff
from redis.retry import Retry
from requests.adapters import HTTPAdapter

from core.config import ConfigError, Settings, env_name

log = logging.getLogger(__name__)

Mode = Literal["anonymous", "verified", "degraded"]
BreakerState = Literal["closed", "open", "half_open"]

_ASYMMETRIC_PREFIXES = ("RS", "PS", "ES")
# A readiness probe must answer fast even when the auth service hangs.
_PROBE_TIMEOUT_S = 1.0
# After a Redis error, skip the cache this long instead of paying a timeout per event.
_REDIS_RETRY_S = 1.0
_WARN_EVERY_S = 30.0


@dataclass(frozen=True)
class Identity:
    """The user an event belongs to, and how that was established."""

    user_id: str
    mode: Mode


ANONYMOUS = Identity("anonymous", "anonymous")


class TokenRejected(Exception):  # noqa: N818 - reads as an outcome, like StopIteration
    """The token is not acceptable (answer 401). ``reason`` is safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _AuthUnavailableError(Exception):
    """The auth service gave no usable answer; the message never contains the token."""


@dataclass(frozen=True)
class _Entry:
    """A cached answer of the auth service: a user id or a rejection, valid until ``until``."""

    until: float
    user_id: str | None = None
    rejected: str | None = None

    def to_json(self) -> str:
        if self.user_id is not None:
            return json.dumps({"user_id": self.user_id, "until": self.until})
        return json.dumps({"rejected": self.rejected, "until": self.until})

    @classmethod
    def from_json(cls, raw: bytes | str) -> _Entry | None:
        try:
            value = json.loads(raw)
            until = float(value["until"])
        except (ValueError, TypeError, KeyError):
            return None
        if isinstance(value.get("user_id"), str):
            return cls(until, user_id=value["user_id"])
        if isinstance(value.get("rejected"), str):
            return cls(until, rejected=value["rejected"])
        return None

    def answer(self) -> Identity:
        if self.user_id is None:
            raise TokenRejected(self.rejected or "token rejected")
        return Identity(self.user_id, "verified")


class CircuitBreaker:
    """Stops calling a failing dependency for a while, then lets one trial call through.

    closed: every call goes through. After ``failures`` consecutive failures it opens:
    no call goes through for ``reset_s``. Then it is half-open: the first caller gets
    the trial call, the others are refused until the trial succeeds (closed) or
    fails (open again).
    """

    def __init__(
        self,
        failures: int,
        reset_s: float,
        clock: Callable[[], float] = time.monotonic,
        name: str = "auth service",
    ) -> None:
        self.name = name
        self._failures_to_open = max(1, failures)
        self._reset_s = reset_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state()

    def _state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._trial_running or self._clock() - self._opened_at >= self._reset_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """Whether the caller may call the dependency now; a True must be followed by a record."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half_open" and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            if self._opened_at is not None:
                log.info("%s answers again: circuit breaker closed", self.name)
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            reopening = self._trial_running
            self._trial_running = False
            if reopening:
                self._opened_at = self._clock()
                # A long outage would otherwise log one line per failed trial.
                log.debug("%s still failing: circuit breaker open again", self.name)
            elif self._opened_at is None and self._failures >= self._failures_to_open:
                self._opened_at = self._clock()
                log.warning(
                    "%s circuit breaker open for %.1f s after %d consecutive failures",
                    self.name,
                    self._reset_s,
                    self._failures,
                )


class _LocalCache:
    """A bounded in-process LRU of cache entries, so hot tokens skip the Redis round trip."""

    def __init__(self, size: int, max_ttl_s: float, clock: Callable[[], float]) -> None:
        self._size = size
        self._max_ttl_s = max_ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, digest: str) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if entry.until <= self._clock():
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return entry

    def put(self, digest: str, entry: _Entry) -> None:
        if self._size <= 0:
            return
        # Bounding the local lifetime keeps processes from serving an answer long after an
        # operator removed it from Redis.
        until = min(entry.until, self._clock() + self._max_ttl_s)
        with self._lock:
            self._entries[digest] = _Entry(until, entry.user_id, entry.rejected)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


class _Stats:
    """Thread-safe counters, exposed as a plain dict for metrics."""

    NAMES = (
        "anonymous",
        "verified",
        "degraded",
        "rejected",
        "cache_hits_local",
        "cache_hits_redis",
        "cache_misses",
        "cache_errors",
        "auth_calls",
        "auth_unavailable",
        "breaker_short_circuits",
        "fallbacks",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.NAMES, 0)

    def add(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class _RateLimitedWarning:
    """Logs a warning at most once per interval per topic, counting what was suppressed."""

    def __init__(self, every_s: float, clock: Callable[[], float]) -> None:
        self._every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, topic: str, message: str, *args: object) -> None:
        now = self._clock()
        with self._lock:
            last = self._last.get(topic)
            if last is not None and now - last < self._every_s:
                self._suppressed[topic] = self._suppressed.get(topic, 0) + 1
                return
            self._last[topic] = now
            suppressed = self._suppressed.pop(topic, 0)
        if suppressed:
            message += " (%d similar warnings suppressed)"
            args = (*args, suppressed)
        log.warning(message, *args)


class IdentityResolver:
    """Turns a client's token into an :class:`Identity`; one per process, shared by threads."""

    def __init__(
        self,
        settings: Settings,
        redis_client: redis.Redis | None = None,
        session: requests.Session | None = None,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` is wall time (token expiry); ``monotonic`` drives the breakers."""
        self._settings = settings
        self._redis = redis_client
        self._session = session if session is not None else _make_session(settings.api_threads)
        self._clock = clock
        self._keys = _load_keys(settings)
        self.breaker = CircuitBreaker(
            settings.auth_breaker_failures, settings.auth_breaker_reset_s, monotonic
        )
        # One failure is enough: a down Redis costs every event a timeout otherwise.
        self._redis_breaker = CircuitBreaker(1, _REDIS_RETRY_S, monotonic, name="Redis")
        self._local = _LocalCache(settings.cache_local_size, settings.cache_local_ttl_s, clock)
        self._stats = _Stats()
        self._warn = _RateLimitedWarning(_WARN_EVERY_S, monotonic)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> IdentityResolver:
        """A resolver with its own Redis client (short timeouts, no retries) and HTTP session.

        ``options`` are the keyword-only arguments of the constructor.
        """
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout_s,
            socket_connect_timeout=settings.redis_timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(settings, client, **options)

    def resolve(self, token: str | None) -> Identity:
        """The identity behind ``token``; raises :class:`TokenRejected` when it is refused."""
        try:
            identity = self._resolve(token)
        except TokenRejected:
            self._stats.add("rejected")
            raise
        self._stats.add(identity.mode)
        return identity

    def _resolve(self, token: str | None) -> Identity:
        if token is None:
            return ANONYMOUS
        if not isinstance(token, str):
            raise TokenRejected("token must be a string")
        if not token.strip():
            raise TokenRejected("token is empty")
        digest = hashlib.sha256(token.encode()).hexdigest()

        entry = self._cached(digest)
        if entry is not None:
            return entry.answer()

        if not self.breaker.allow():
            self._stats.add("breaker_short_circuits")
            return self._fallback(token)
        try:
            entry = self._ask_service(token)
        except _AuthUnavailableError as error:
            self.breaker.record_failure()
            self._stats.add("auth_unavailable")
            self._warn("auth", "auth service unavailable (%s): verifying JWTs locally", error)
            return self._fallback(token)
        except BaseException:
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        self._store(digest, entry)
        return entry.answer()

    def cache_key(self, token: str) -> str:
        """The Redis key of ``token``'s cached answer: a hash, never the token itself."""
        return self._redis_key(hashlib.sha256(token.encode()).hexdigest())

    def _redis_key(self, digest: str) -> str:
        return f"{self._settings.redis_prefix}identity:{digest}"

    # Cache

    def _cached(self, digest: str) -> _Entry | None:
        entry = self._local.get(digest)
        if entry is not None:
            self._stats.add("cache_hits_local")
            return entry
        raw = self._redis_call(lambda client: client.get(self._redis_key(digest)))
        entry = _Entry.from_json(raw) if raw is not None else None
        if entry is None or entry.until <= self._clock():
            self._stats.add("cache_misses")
            return None
        self._stats.add("cache_hits_redis")
        self._local.put(digest, entry)
        return entry

    def _store(self, digest: str, entry: _Entry) -> None:
        ttl = entry.until - self._clock()
        if ttl <= 0:
            return
        self._local.put(digest, entry)
        self._redis_call(
            lambda client: client.set(
                self._redis_key(digest), entry.to_json(), px=max(1, math.floor(ttl * 1000))
            )
        )

    def _redis_call(self, call: Callable[[redis.Redis], Any]) -> Any:
        if self._redis is None or not self._redis_breaker.allow():
            return None
        try:
            result = call(self._redis)
        except (redis.RedisError, OSError) as error:
            self._redis_breaker.record_failure()
            self._stats.add("cache_errors")
            self._warn("redis", "Redis unavailable (%s): resolving without the cache", _name(error))
            return None
        self._redis_breaker.record_success()
        return result

    # Auth service

    def _ask_service(self, token: str) -> _Entry:
        settings = self._settings
        self._stats.add("auth_calls")
        try:
            response = self._session.request(
                settings.auth_method.upper(),
                settings.auth_url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=settings.auth_timeout_s,
                # A redirect could carry the token to a host we did not configure.
                allow_redirects=False,
            )
        except requests.RequestException as error:
            raise _AuthUnavailableError(_name(error)) from None
        now = self._clock()
        if response.status_code in (401, 403):
            return _Entry(now + settings.cache_rejection_ttl_s, rejected="token rejected")
        if response.status_code != 200:
            raise _AuthUnavailableError(f"HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise _AuthUnavailableError("answer is not JSON") from None
        user_id = _user_id(_dig(answer, settings.auth_user_id_field))
        if user_id is None:
            raise _AuthUnavailableError(f"answer has no user id at {settings.auth_user_id_field!r}")
        expiry = _dig(answer, settings.auth_expiry_field)
        if expiry is None:
            expiry = _unverified_expiry(token)
        elif isinstance(expiry, bool) or not isinstance(expiry, int | float):
            raise _AuthUnavailableError(f"answer has a non-numeric {settings.auth_expiry_field!r}")
        until = now + settings.cache_max_ttl_s
        if expiry is not None:
            until = min(until, float(expiry))
        return _Entry(until, user_id=user_id)

    # Local fallback

    def _fallback(self, token: str) -> Identity:
        self._stats.add("fallbacks")
        return Identity(self._verify_locally(token), "degraded")

    def _verify_locally(self, token: str) -> str:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise TokenRejected("token is not a valid JWT") from None
        if not isinstance(algorithm, str) or algorithm not in self._settings.jwt_algorithms:
            raise TokenRejected("token algorithm is not allowed")
        key = self._keys.get(_family(algorithm))
        if key is None:
            raise TokenRejected("token algorithm is not allowed")
        claim = self._settings.jwt_user_id_claim
        try:
            # Only the header's own algorithm, with the key of its family: an HS token is
            # never checked against the public key used as a shared secret.
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                options={"verify_exp": False, "require": [claim]},
            )
        except jwt.PyJWTError:
            raise TokenRejected("token signature or claims are invalid") from None
        user_id = _user_id(claims.get(claim))
        if user_id is None:
            raise TokenRejected("token has no user id")
        return user_id

    # Readiness and metrics

    def check_auth_service(self) -> dict[str, Any]:
        """Whether the auth service answers; its outage degrades identity but stops nothing."""
        settings = self._settings
        breaker = self.breaker.state
        try:
            # No token: any answer below 500 (typically 401) shows the service is up.
            response = self._session.request(
                settings.auth_method.upper(),
                settings.auth_url,
                timeout=min(settings.auth_timeout_s, _PROBE_TIMEOUT_S),
                allow_redirects=False,
            )
        except requests.RequestException as error:
            return {"ok": False, "detail": f"unreachable: {_name(error)}", "breaker": breaker}
        if response.status_code >= 500:
            return {"ok": False, "detail": f"HTTP {response.status_code}", "breaker": breaker}
        return {"ok": True, "detail": f"HTTP {response.status_code}", "breaker": breaker}

    def check_cache(self) -> dict[str, Any]:
        """Whether Redis answers; without it identities are resolved uncached."""
        if self._redis is None:
            return {"ok": False, "detail": "no Redis client configured"}
        try:
            self._redis.ping()
        except (redis.RedisError, OSError) as error:
            return {"ok": False, "detail": f"unreachable: {_name(error)}"}
        return {"ok": True, "detail": "PONG"}

    def stats(self) -> dict[str, int]:
        """Counters since start: identities by mode, rejections, cache hits, calls, fallbacks."""
        return self._stats.snapshot()


def _make_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    # One pooled connection per API thread; retries would multiply the timeout.
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _load_keys(settings: Settings) -> dict[str, Any]:
    """The verification key of each algorithm family allowed; a missing key stops start-up."""
    keys: dict[str, Any] = {}
    families = {_family(algorithm) for algorithm in settings.jwt_algorithms}
    if "hmac" in families:
        if not settings.jwt_secret:
            raise ConfigError(f"{env_name('jwt_secret')} is needed for HS* algorithms")
        keys["hmac"] = settings.jwt_secret
    if "public" in families:
        keys["public"] = _load_public_key(settings.jwt_public_key)
    if "unknown" in families:
        raise ConfigError(f"{env_name('jwt_algorithms')} has an unsupported algorithm")
    return keys


def _load_public_key(value: str) -> Any:
    variable = env_name("jwt_public_key")
    if not value.strip():
        raise ConfigError(f"{variable} is needed for RS*/PS*/ES*/EdDSA algorithms")
    pem = value
    if "-----BEGIN" not in value:
        try:
            pem = Path(value).read_text()
        except OSError as error:
            raise ConfigError(f"{variable}: cannot read {value}: {error.strerror}") from None
    try:
        if "CERTIFICATE" in pem:
            return x509.load_pem_x509_certificate(pem.encode()).public_key()
        return load_pem_public_key(pem.encode())
    except ValueError:
        raise ConfigError(f"{variable} is not a PEM public key or certificate") from None


def _family(algorithm: str) -> Literal["hmac", "public", "unknown"]:
    if algorithm.startswith("HS"):
        return "hmac"
    if algorithm.startswith(_ASYMMETRIC_PREFIXES) or algorithm == "EdDSA":
        return "public"
    return "unknown"


def _dig(value: Any, path: str) -> Any:
    """The value at dotted ``path`` inside nested JSON objects, or None."""
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _user_id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


def _unverified_expiry(token: str) -> float | None:
    """The token's own ``exp``, only ever used to shorten a cache lifetime."""
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


def _name(error: BaseException) -> str:
    """An exception's class name: its message might quote a request, hence the token."""
    return type(error).__name__
