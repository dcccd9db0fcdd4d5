"""Who sent an event: the auth service's answer, cached in Redis, with a local JWT fallback.

The contract with the auth service, the caching rules and the fallback are described in
``docs/auth-service.md``. The token itself never reaches a log, an exception or a cache key.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import jwt
import redis
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from requests.adapters import HTTPAdapter

from core.config import (
    DEV_JWT_SECRET,
    AuthSettings,
    CacheSettings,
    ConfigError,
    JwtSettings,
    Settings,
    env_name,
)
from core.ingest import redis_link
from core.ingest.breaker import CircuitBreaker
from core.ingest.checks import CachedCheck
from core.ingest.token_cache import CachedAnswer, LocalCache
from core.log import RateLimitedWarning
from core.message import ANONYMOUS, MAX_TOKEN_LENGTH, Identity

log = logging.getLogger(__name__)


_ASYMMETRIC_PREFIXES = ("RS", "PS", "ES")
# A readiness probe must answer fast even when the auth service hangs.
_PROBE_TIMEOUT_S = 1.0
_WARN_EVERY_S = 30.0
#: Answers that refuse the token itself, whoever sends them (the service or a proxy in front
#: of it): 400 (malformed) and 431 (too large for a header). Rejections, never an outage.
_TOKEN_REFUSED = (400, 401, 403, 431)


class TokenRejected(Exception):  # noqa: N818 - reads as an outcome, like StopIteration
    """The token is not acceptable (answer 401). ``reason`` is safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _AuthUnavailableError(Exception):
    """The auth service gave no usable answer; the message never contains the token.

    ``outage``: no answer in time, or a 5xx, which count toward the circuit breaker. Any
    other unusable answer (429, a 404 from a misconfigured URL, a body without a user id)
    falls back for this token only: a client must not be able to open the breaker for
    everyone with an answer it can provoke.
    """

    def __init__(self, detail: str, *, outage: bool) -> None:
        super().__init__(detail)
        self.outage = outage


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


class IdentityResolver:
    """Turns a client's token into an :class:`Identity`; one per process, shared by threads."""

    def __init__(
        self,
        auth: AuthSettings,
        jwt: JwtSettings,
        cache: CacheSettings,
        redis_client: redis.Redis | None = None,
        session: requests.Session | None = None,
        *,
        key_prefix: str = "clickstream:",
        pool_size: int = 8,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        check_ttl_s: float = 0.0,
    ) -> None:
        """Asks the auth service (``auth``), else verifies locally (``jwt``); keeps answers
        in ``redis_client`` under ``key_prefix`` and in memory (``cache``). ``pool_size`` is
        the threads that may call at once; ``clock`` is wall time (token expiry);
        ``monotonic`` drives the breakers; the readiness checks reuse their last answer
        for ``check_ttl_s``."""
        self._auth = auth
        self._jwt = jwt
        self._cache = cache
        self._key_prefix = key_prefix
        self._redis = redis_client
        self._session = session if session is not None else _make_session(pool_size)
        self._clock = clock
        self._keys = _load_keys(jwt)
        if self._keys.get("hmac") == DEV_JWT_SECRET:
            log.warning(
                "%s is the development secret (%s=true): while the auth service is down, "
                "anyone can sign a token this process accepts; never run so outside development",
                env_name("jwt_secret"),
                env_name("jwt_allow_dev_secret"),
            )
        self.breaker = CircuitBreaker(auth.breaker_failures, auth.breaker_reset_s, monotonic)
        self._redis_breaker = redis_link.breaker("Redis", monotonic)
        self._local = LocalCache(cache.local_size, cache.local_ttl_s, clock)
        self._stats = _Stats()
        self._warn = RateLimitedWarning(log, _WARN_EVERY_S, monotonic)
        self._service_check = CachedCheck(self._probe_service, check_ttl_s, monotonic)
        self._cache_check = CachedCheck(self._ping_cache, check_ttl_s, monotonic)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> IdentityResolver:
        """A resolver with its own Redis client (short timeouts, no retries) and HTTP session.

        ``options`` are the keyword-only arguments of the constructor.
        """
        options = {
            "key_prefix": settings.redis.prefix,
            "pool_size": settings.api.threads,
            "check_ttl_s": settings.ops.ready_ttl_s,
        } | options
        return cls(
            settings.auth,
            settings.jwt,
            settings.cache,
            redis_link.connect(settings.redis),
            **options,
        )

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
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenRejected(f"token is longer than {MAX_TOKEN_LENGTH} characters")
        digest = hashlib.sha256(token.encode()).hexdigest()

        entry = self._cached(digest)
        if entry is not None:
            return _answer(entry)

        if not self.breaker.allow():
            self._stats.add("breaker_short_circuits")
            return self._fallback(token)
        try:
            entry, service_answered = self._ask_service(token)
        except _AuthUnavailableError as error:
            if error.outage:
                self.breaker.record_failure()
            else:
                self.breaker.release()
            self._stats.add("auth_unavailable")
            self._warn("auth", "auth service unavailable (%s): verifying JWTs locally", error)
            return self._fallback(token)
        except BaseException:
            self.breaker.record_failure()
            raise
        if service_answered:
            self.breaker.record_success()
        else:
            self.breaker.release()
        self._store(digest, entry)
        return _answer(entry)

    def cache_key(self, token: str) -> str:
        """The Redis key of ``token``'s cached answer: a hash, never the token itself."""
        return self._redis_key(hashlib.sha256(token.encode()).hexdigest())

    def _redis_key(self, digest: str) -> str:
        return f"{self._key_prefix}identity:{digest}"

    # Cache

    def _cached(self, digest: str) -> CachedAnswer | None:
        entry = self._local.get(digest)
        if entry is not None:
            self._stats.add("cache_hits_local")
            return entry
        raw = self._redis_call(lambda client: client.get(self._redis_key(digest)))
        entry = CachedAnswer.from_json(raw) if raw is not None else None
        if entry is None or entry.until <= self._clock():
            self._stats.add("cache_misses")
            return None
        self._stats.add("cache_hits_redis")
        self._local.put(digest, entry)
        return entry

    def _store(self, digest: str, entry: CachedAnswer) -> None:
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

    def _ask_service(self, token: str) -> tuple[CachedAnswer, bool]:
        """The service's answer, and whether it shows the service itself is up: a 400 or a
        431 may come from a proxy in front of a service that is down."""
        self._stats.add("auth_calls")
        try:
            response = self._session.request(
                self._auth.method.upper(),
                self._auth.url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self._auth.timeout_s,
                # A redirect could carry the token to a host we did not configure.
                allow_redirects=False,
            )
        except requests.RequestException as error:
            # Connection errors and timeouts: the outage the breaker and the fallback are for.
            raise _AuthUnavailableError(_name(error), outage=True) from None
        now = self._clock()
        status = response.status_code
        if status in _TOKEN_REFUSED:
            rejected = CachedAnswer(now + self._cache.rejection_ttl_s, rejected="token rejected")
            return rejected, status in (401, 403)
        if status != 200:
            raise _AuthUnavailableError(f"HTTP {status}", outage=status >= 500)
        try:
            answer = response.json()
        except ValueError:
            raise _AuthUnavailableError("answer is not JSON", outage=False) from None
        user_id = _user_id(_dig(answer, self._auth.user_id_field))
        if user_id is None:
            raise _AuthUnavailableError(
                f"answer has no user id at {self._auth.user_id_field!r}", outage=False
            )
        expiry = _dig(answer, self._auth.expiry_field)
        if expiry is None:
            expiry = _unverified_expiry(token)
        elif isinstance(expiry, bool) or not isinstance(expiry, int | float):
            raise _AuthUnavailableError(
                f"answer has a non-numeric {self._auth.expiry_field!r}", outage=False
            )
        until = now + self._cache.max_ttl_s
        if expiry is not None:
            until = min(until, float(expiry))
        return CachedAnswer(until, user_id=user_id), True

    # Local fallback

    def _fallback(self, token: str) -> Identity:
        self._stats.add("fallbacks")
        return Identity(self._verify_locally(token), "degraded")

    def _verify_locally(self, token: str) -> str:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise TokenRejected("token is not a valid JWT") from None
        if not isinstance(algorithm, str) or algorithm not in self._jwt.algorithms:
            raise TokenRejected("token algorithm is not allowed")
        key = self._keys.get(_family(algorithm))
        if key is None:
            raise TokenRejected("token algorithm is not allowed")
        claim = self._jwt.user_id_claim
        try:
            # Only the header's own algorithm, with the key of its family: an HS token is
            # never checked against the public key used as a shared secret. The expiry is
            # checked below, against its own bound and not as pyjwt's leeway, which would
            # stretch nbf and iat as well. pyjwt wants string sub and jti claims; the
            # contract allows an integer user id, and the fallback has no use for jti.
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                options={
                    "verify_exp": False,
                    "verify_sub": False,
                    "verify_jti": False,
                    "require": [claim],
                },
            )
        except jwt.PyJWTError:
            raise TokenRejected("token signature or claims are invalid") from None
        user_id = _user_id(claims.get(claim))
        if user_id is None:
            raise TokenRejected("token has no user id")
        self._check_age(claims.get("exp"))
        return user_id

    def _check_age(self, exp: Any) -> None:
        """Refuse a token expired longer than ``jwt.max_expired_s`` ago (unless that is inf)."""
        bound = self._jwt.max_expired_s
        if math.isinf(bound):
            return
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise TokenRejected("token has no expiry")
        if self._clock() - exp > bound:
            raise TokenRejected("token expired too long ago")

    # Readiness and metrics

    def check_auth_service(self) -> dict[str, Any]:
        """Whether the auth service answers (asked once per ``check_ttl_s``), and the state of
        its breaker now; its outage degrades identity but stops nothing."""
        return self._service_check() | {"breaker": self.breaker.state}

    def _probe_service(self) -> dict[str, Any]:
        try:
            # No token: any answer below 500 (typically 401) shows the service is up.
            response = self._session.request(
                self._auth.method.upper(),
                self._auth.url,
                timeout=min(self._auth.timeout_s, _PROBE_TIMEOUT_S),
                allow_redirects=False,
            )
        except requests.RequestException as error:
            return {"ok": False, "detail": f"unreachable: {_name(error)}"}
        if response.status_code >= 500:
            return {"ok": False, "detail": f"HTTP {response.status_code}"}
        return {"ok": True, "detail": f"HTTP {response.status_code}"}

    def check_cache(self) -> dict[str, Any]:
        """Whether Redis answers (pinged once per ``check_ttl_s``); without it identities
        are resolved uncached."""
        return self._cache_check()

    def _ping_cache(self) -> dict[str, Any]:
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


def _answer(entry: CachedAnswer) -> Identity:
    """The identity a cached answer stands for, or the rejection it recorded."""
    if entry.user_id is None:
        raise TokenRejected(entry.rejected or "token rejected")
    return Identity(entry.user_id, "verified")


def _make_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    # One pooled connection per API thread; retries would multiply the timeout.
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _load_keys(jwt: JwtSettings) -> dict[str, Any]:
    """The verification key of each algorithm family allowed; a missing key stops start-up."""
    keys: dict[str, Any] = {}
    families = {_family(algorithm) for algorithm in jwt.algorithms}
    if "hmac" in families:
        if not jwt.secret:
            raise ConfigError(f"{env_name('jwt_secret')} is needed for HS* algorithms")
        if jwt.secret == DEV_JWT_SECRET:
            _refuse_dev_secret(jwt)
        keys["hmac"] = jwt.secret
    if "public" in families:
        keys["public"] = _load_public_key(jwt.public_key)
    if "unknown" in families:
        raise ConfigError(f"{env_name('jwt_algorithms')} has an unsupported algorithm")
    return keys


def check_keys(jwt: JwtSettings) -> None:
    """Raise :class:`ConfigError` unless local verification can start with ``jwt``: a key for
    each algorithm family allowed, and not the development secret without its flag.

    What the server's master process checks before it starts workers (``core.serve``).
    """
    _load_keys(jwt)


def _refuse_dev_secret(jwt: JwtSettings) -> None:
    """Anyone can read the development secret, and sign tokens the fallback accepts."""
    if not jwt.allow_dev_secret:
        raise ConfigError(
            f"{env_name('jwt_secret')} is the development secret, published with clickstream: "
            "set the auth service's own (or use RS*/ES*/EdDSA keys), or "
            f"{env_name('jwt_allow_dev_secret')}=true for development"
        )


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
