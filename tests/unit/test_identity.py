"""Identity resolution logic, with a fake auth service, a fake Redis and a fake clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from datetime import datetime

import jwt
import pytest
import redis
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import NameOID

from core.config import ConfigError, Settings
from core.ingest.identity import ANONYMOUS, Identity, IdentityResolver, TokenRejected

NOW = 1_800_000_000.0
# pyjwt checks ``exp`` against the real clock, not the injected one: a token meant to be
# expired for pyjwt must have expired in real time.
LONG_AGO = 1_000_000_000
SECRET = Settings().jwt.secret


class Clock:
    """Time that only moves when a test says so."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Response:
    def __init__(self, status_code: int, body: object = None) -> None:
        self.status_code = status_code
        self._body = body

    def json(self) -> object:
        if isinstance(self._body, str):
            return json.loads(self._body)
        return self._body


class Session:
    """Answers every request with the next item of ``answers`` (repeating the last)."""

    def __init__(self, *answers: Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[dict] = []

    def request(self, method: str, url: str, **kwargs) -> Response:
        self.requests.append({"method": method, "url": url, **kwargs})
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeRedis:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.ttls_ms: dict[str, int] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def set(self, key: str, value: str, px: int) -> None:
        self.data[key] = value.encode()
        self.ttls_ms[key] = px

    def ping(self) -> bool:
        return True


class DownRedis:
    def __init__(self) -> None:
        self.calls = 0

    def _fail(self, *args, **kwargs):
        self.calls += 1
        raise redis.ConnectionError("Connection refused")

    get = set = ping = _fail


def hs256(claims: dict, secret: str = SECRET, **kwargs) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", **kwargs)


def ok(user_id: str = "u1", exp: float | None = NOW + 600) -> Response:
    body: dict = {"user_id": user_id}
    if exp is not None:
        body["exp"] = exp
    return Response(200, body)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def base() -> Settings:
    return Settings.of(
        auth_breaker_failures=2,
        auth_breaker_reset_s=5.0,
        redis_prefix="t:",
        jwt_allow_dev_secret=True,
    )


def make(settings: Settings, session: Session, clock: Clock, cache=None, **changes):
    settings = settings.replace(**changes)
    return IdentityResolver(
        settings.auth,
        settings.jwt,
        settings.cache,
        cache,
        session,
        key_prefix=settings.redis.prefix,
        clock=clock,
        monotonic=clock,
    )


def rejection(resolver: IdentityResolver, token: object) -> str:
    """The reason the client is given for the refusal of ``token``: a sentence, never the token."""
    with pytest.raises(TokenRejected) as raised:
        resolver.resolve(token)
    reason = raised.value.reason
    assert isinstance(reason, str) and reason.strip()
    assert str(raised.value) == reason
    if isinstance(token, str) and token.strip():
        assert token not in reason
    return reason


# Basics


def test_absent_token_is_anonymous(base, clock):
    session = Session(ok())
    assert (
        make(base, session, clock).resolve(None) == ANONYMOUS == Identity("anonymous", "anonymous")
    )
    assert session.requests == []


@pytest.mark.parametrize("token", ["", "   ", 123, b"tok", ["tok"]])
def test_empty_or_non_string_token_is_rejected_without_a_call(base, clock, token):
    session = Session(ok())
    rejection(make(base, session, clock), token)
    assert session.requests == []


def test_service_call_shape(base, clock):
    session = Session(ok())
    resolver = make(base, session, clock)
    assert resolver.resolve("tok-123") == Identity("u1", "verified")
    call = session.requests[0]
    assert call["method"] == "POST"
    assert call["url"] == base.auth.url
    assert call["headers"] == {"Authorization": "Bearer tok-123"}
    assert call["timeout"] == base.auth.timeout_s
    assert call["allow_redirects"] is False


def test_dotted_user_id_path_and_int_user_id(base, clock):
    settings = base.replace(auth_user_id_field="data.user.id", auth_expiry_field="data.exp")
    session = Session(Response(200, {"data": {"user": {"id": 42}, "exp": NOW + 60}}))
    assert make(settings, session, clock).resolve("t") == Identity("42", "verified")


@pytest.mark.parametrize("status", [401, 403])
def test_service_rejection(base, clock, status):
    rejection(make(base, Session(Response(status, {"error": "nope"})), clock), "secret-token")


# Cache


def test_cache_key_is_prefixed_sha256(base, clock):
    resolver = make(base, Session(ok()), clock)
    digest = hashlib.sha256(b"my-token").hexdigest()
    assert resolver.cache_key("my-token") == f"t:identity:{digest}"


def test_accepted_answer_cached_until_token_expiry(base, clock):
    cache = FakeRedis()
    session = Session(ok(exp=NOW + 600))
    resolver = make(base, session, clock, cache)
    resolver.resolve("tok")
    key = resolver.cache_key("tok")
    assert list(cache.data) == [key]
    assert cache.ttls_ms[key] == 600_000
    assert json.loads(cache.data[key])["user_id"] == "u1"
    assert b"tok" not in cache.data[key]


def test_accepted_answer_cached_at_most_max_ttl(base, clock):
    cache = FakeRedis()
    resolver = make(base.replace(cache_max_ttl_s=100), Session(ok(exp=NOW + 10_000)), clock, cache)
    resolver.resolve("tok")
    assert cache.ttls_ms[resolver.cache_key("tok")] == 100_000


def test_answer_without_expiry_uses_the_tokens_own_exp(base, clock):
    cache = FakeRedis()
    token = hs256({"sub": "u1", "exp": int(NOW) + 120})
    resolver = make(base, Session(ok(exp=None)), clock, cache)
    resolver.resolve(token)
    assert cache.ttls_ms[resolver.cache_key(token)] == 120_000


@pytest.mark.parametrize("exp", [NOW - 1, NOW])
def test_expired_answer_not_cached(base, clock, exp):
    cache = FakeRedis()
    session = Session(ok(exp=exp))
    resolver = make(base, session, clock, cache)
    assert resolver.resolve("tok").mode == "verified"
    resolver.resolve("tok")
    assert cache.data == {}
    assert len(session.requests) == 2


@pytest.mark.parametrize(("lifetime_s", "ttl_ms"), [(0.5, 500), (0.0015, 1)])
def test_short_lived_answer_cached_no_longer_than_it_lives(base, clock, lifetime_s, ttl_ms):
    # Rounded down to the millisecond: Redis never keeps the answer past the token's expiry.
    cache = FakeRedis()
    resolver = make(base, Session(ok(exp=NOW + lifetime_s)), clock, cache)
    resolver.resolve("tok")
    assert cache.ttls_ms[resolver.cache_key("tok")] == ttl_ms


@pytest.mark.parametrize("exp", ["soon", True])
def test_answer_without_expiry_ignores_a_non_numeric_exp_claim(base, clock, exp):
    cache = FakeRedis()
    token = hs256({"sub": "u1", "exp": exp})
    resolver = make(base.replace(cache_max_ttl_s=100), Session(ok(exp=None)), clock, cache)
    assert resolver.resolve(token) == Identity("u1", "verified")
    assert cache.ttls_ms[resolver.cache_key(token)] == 100_000


def test_rejection_cached_for_rejection_ttl(base, clock):
    cache = FakeRedis()
    session = Session(Response(401, {}))
    resolver = make(base.replace(cache_rejection_ttl_s=30), session, clock, cache)
    with pytest.raises(TokenRejected):
        resolver.resolve("tok")
    key = resolver.cache_key("tok")
    assert cache.ttls_ms[key] == 30_000
    value = json.loads(cache.data[key])
    assert value["until"] == NOW + 30
    assert isinstance(value["rejected"], str)
    with pytest.raises(TokenRejected):
        resolver.resolve("tok")
    assert len(session.requests) == 1
    clock.advance(31)
    with pytest.raises(TokenRejected):
        resolver.resolve("tok")
    assert len(session.requests) == 2


def test_rejection_cached_in_redis_is_shared_between_processes(base, clock):
    cache = FakeRedis()
    rejection(make(base, Session(Response(401, {})), clock, cache), "secret-token")
    other_session = Session(ok())
    other = make(base, other_session, clock, cache)
    rejection(other, "secret-token")
    assert other_session.requests == []


def test_cached_rejection_keeps_its_reason(base, clock):
    # Written by another process, maybe another version: served from Redis, then from memory.
    cache = FakeRedis()
    resolver = make(base, Session(ok()), clock, cache)
    value = {"rejected": "token revoked", "until": NOW + 30}
    cache.data[resolver.cache_key("secret-token")] = json.dumps(value).encode()
    assert rejection(resolver, "secret-token") == "token revoked"
    assert rejection(resolver, "secret-token") == "token revoked"
    stats = resolver.stats()
    assert (stats["cache_hits_redis"], stats["cache_hits_local"], stats["auth_calls"]) == (1, 1, 0)


def test_cached_answer_is_stale_at_its_expiry_instant(base, clock):
    cache = FakeRedis()
    session = Session(ok(exp=NOW + 10))
    resolver = make(base, session, clock, cache)
    resolver.resolve("tok")
    clock.advance(10)
    resolver.resolve("tok")  # neither from memory nor from Redis
    assert len(session.requests) == 2
    other_session = Session(ok())
    make(base, other_session, clock, cache).resolve("tok")  # nothing in memory: Redis only
    assert len(other_session.requests) == 1


def test_local_cache_serves_hot_tokens_and_respects_expiry(base, clock):
    cache = FakeRedis()
    session = Session(ok(exp=NOW + 10))
    resolver = make(base, session, clock, cache)
    for _ in range(5):
        resolver.resolve("tok")
    assert len(session.requests) == 1
    assert resolver.stats()["cache_hits_local"] == 4
    clock.advance(11)
    resolver.resolve("tok")
    assert len(session.requests) == 2


def test_redis_hit_from_another_process(base, clock):
    cache = FakeRedis()
    make(base, Session(ok()), clock, cache).resolve("tok")
    other_session = Session(ok(user_id="someone-else"))
    other = make(base, other_session, clock, cache)
    assert other.resolve("tok") == Identity("u1", "verified")
    assert other.resolve("tok") == Identity("u1", "verified")
    assert other_session.requests == []
    # The Redis hit is kept in memory: the second resolution makes no round trip.
    assert other.stats()["cache_hits_redis"] == 1
    assert other.stats()["cache_hits_local"] == 1


def test_local_cache_lifetime_is_bounded(base, clock):
    cache = FakeRedis()
    session = Session(ok(exp=NOW + 3600))
    resolver = make(base, session, clock, cache, cache_local_ttl_s=5)
    resolver.resolve("tok")
    cache.data.clear()  # as an operator deleting the key would
    clock.advance(6)
    resolver.resolve("tok")
    assert len(session.requests) == 2


@pytest.mark.parametrize("size", [1, 2])
def test_local_cache_holds_as_many_tokens_as_its_size(base, clock, size):
    session = Session(ok())
    resolver = make(base, session, clock, cache_local_size=size)
    tokens = [f"tok-{i}" for i in range(size)]
    for token in tokens + tokens:
        resolver.resolve(token)
    assert len(session.requests) == size


def test_local_cache_is_bounded(base, clock):
    session = Session(ok())
    resolver = make(base, session, clock, cache_local_size=2)
    for token in ("a", "b", "c", "a"):
        resolver.resolve(token)
    assert len(session.requests) == 4


def test_redis_down_resolves_without_cache_and_backs_off(base, clock, caplog):
    cache = DownRedis()
    resolver = make(base, Session(ok()), clock, cache, cache_local_size=0)
    with caplog.at_level(logging.WARNING):
        assert resolver.resolve("tok-secret") == Identity("u1", "verified")
        resolver.resolve("tok-secret")
    # One failure stops Redis calls for a second instead of paying a timeout per event.
    assert cache.calls == 1
    clock.advance(2)
    resolver.resolve("tok-secret")
    assert cache.calls == 2
    assert "tok-secret" not in caplog.text
    assert resolver.check_cache()["ok"] is False


def test_outage_warnings_at_most_every_30_s_per_dependency(base, clock, caplog):
    resolver = make(
        base, Session(requests.ConnectionError()), clock, DownRedis(), auth_breaker_failures=100
    )
    token = hs256({"sub": "u1"})

    def warnings() -> int:
        return sum(
            1
            for r in caplog.records
            if r.name == "core.ingest.identity" and r.levelno == logging.WARNING
        )

    with caplog.at_level(logging.WARNING, logger="core.ingest.identity"):
        assert resolver.resolve(token) == Identity("u1", "degraded")
        first = warnings()
        for _ in range(2):
            clock.advance(2)  # past the Redis back-off: Redis is tried, and fails, every time
            assert resolver.resolve(token) == Identity("u1", "degraded")
        assert warnings() == first
        clock.now = NOW + 30
        assert resolver.resolve(token) == Identity("u1", "degraded")
        assert warnings() == first + 2  # one for the auth service, one for Redis
    stats = resolver.stats()
    assert (stats["auth_unavailable"], stats["cache_errors"]) == (4, 4)


def test_check_cache(base, clock):
    def check(cache) -> dict:
        return make(base, Session(ok()), clock, cache).check_cache()

    for cache, up in ((FakeRedis(), True), (None, False)):
        status = check(cache)
        assert set(status) == {"ok", "detail"}
        assert status["ok"] is up
        assert isinstance(status["detail"], str) and status["detail"]
    assert check(DownRedis()) == {"ok": False, "detail": "unreachable: ConnectionError"}


def test_degraded_results_not_cached(base, clock):
    cache = FakeRedis()
    session = Session(requests.ConnectionError("refused"))
    resolver = make(base, session, clock, cache)
    token = hs256({"sub": "u9"})
    assert resolver.resolve(token) == Identity("u9", "degraded")
    assert cache.data == {}
    assert resolver.resolve(token).mode == "degraded"
    assert len(session.requests) == 2


# Unavailability and the circuit breaker


@pytest.mark.parametrize(
    "answer",
    [
        requests.ConnectionError("refused"),
        requests.Timeout("slow"),
        Response(503, {"error": "down"}),
        Response(500, "<html>"),
        Response(404, {}),
        Response(200, "not json {"),
        Response(200, {"no_user": "x"}),
        Response(200, {"user_id": ""}),
        Response(200, {"user_id": "u", "exp": "tomorrow"}),
    ],
)
def test_unavailable_answers_fall_back_to_local_jwt(base, clock, answer):
    resolver = make(base, Session(answer), clock)
    assert resolver.resolve(hs256({"sub": "u7"})) == Identity("u7", "degraded")
    assert resolver.stats()["fallbacks"] == 1


def test_breaker_opens_then_half_opens_then_closes(base, clock):
    session = Session(requests.Timeout(), requests.Timeout(), ok(user_id="u1"))
    resolver = make(base, session, clock)
    token = hs256({"sub": "u1"})
    assert resolver.breaker.state == "closed"
    resolver.resolve(token)
    resolver.resolve(token)
    assert resolver.breaker.state == "open"
    # Open: straight to the fallback, no call.
    assert resolver.resolve(token).mode == "degraded"
    assert len(session.requests) == 2
    assert resolver.stats()["breaker_short_circuits"] == 1
    clock.advance(5)
    assert resolver.breaker.state == "half_open"
    assert resolver.resolve(token) == Identity("u1", "verified")
    assert resolver.breaker.state == "closed"
    assert len(session.requests) == 3


def test_failed_trial_reopens_breaker(base, clock):
    session = Session(requests.Timeout())
    resolver = make(base, session, clock)
    token = hs256({"sub": "u1"})
    resolver.resolve(token)
    resolver.resolve(token)
    clock.advance(5)
    resolver.resolve(token)
    assert len(session.requests) == 3
    assert resolver.breaker.state == "open"
    clock.advance(4)
    resolver.resolve(token)
    assert len(session.requests) == 3


def test_rejection_counts_as_a_working_service(base, clock):
    session = Session(requests.Timeout(), Response(401, {}), requests.Timeout())
    resolver = make(base, session, clock)
    resolver.resolve(hs256({"sub": "a"}))
    with pytest.raises(TokenRejected):
        resolver.resolve(hs256({"sub": "b"}))
    resolver.resolve(hs256({"sub": "c"}))
    assert resolver.breaker.state == "closed"


def test_check_auth_service_reports_breaker(base, clock):
    resolver = make(base, Session(Response(401, {"error": "missing bearer token"})), clock)
    assert resolver.check_auth_service() == {"ok": True, "detail": "HTTP 401", "breaker": "closed"}
    down = make(base, Session(requests.ConnectionError("refused")), clock)
    assert down.check_auth_service() == {
        "ok": False,
        "detail": "unreachable: ConnectionError",
        "breaker": "closed",
    }


@pytest.mark.parametrize(
    ("status", "up"),
    [(200, True), (401, True), (404, True), (499, True), (500, False), (503, False)],
)
def test_check_auth_service_is_up_below_500(base, clock, status, up):
    resolver = make(base, Session(Response(status, {})), clock)
    assert resolver.check_auth_service() == {
        "ok": up,
        "detail": f"HTTP {status}",
        "breaker": "closed",
    }


@pytest.mark.parametrize(("auth_timeout_s", "probe_timeout_s"), [(0.3, 0.3), (5.0, 1.0)])
def test_check_auth_service_probe(base, clock, auth_timeout_s, probe_timeout_s):
    session = Session(Response(401, {}))
    resolver = make(base, session, clock, auth_method="get", auth_timeout_s=auth_timeout_s)
    resolver.check_auth_service()
    (call,) = session.requests
    assert call["method"] == "GET"
    assert call["url"] == base.auth.url
    assert "headers" not in call  # no token
    assert call["timeout"] == probe_timeout_s  # at most 1 s, whatever the verify call's timeout
    assert call["allow_redirects"] is False


# Local JWT verification


def test_local_hs256_accepts_expired_token(base, clock):
    token = hs256({"sub": "u5", "exp": LONG_AGO})
    resolver = make(base, Session(requests.ConnectionError()), clock)
    assert resolver.resolve(token) == Identity("u5", "degraded")


def test_local_int_user_id_claim(base, clock):
    settings = base.replace(jwt_user_id_claim="uid")
    token = hs256({"uid": 12})
    assert make(settings, Session(requests.ConnectionError()), clock).resolve(token).user_id == "12"


@pytest.mark.parametrize(
    "token",
    [
        hs256({"sub": "u1"}, secret="another-secret-of-the-same-length-000"),
        hs256({"sub": ""}),
        hs256({"sub": ["u1"]}),
        hs256({"user": "u1"}),
        "not-a-jwt",
        "a.b.c",
    ],
)
def test_local_rejections(base, clock, token):
    rejection(make(base, Session(requests.ConnectionError()), clock), token)


def test_alg_none_rejected(base, clock):
    token = jwt.encode({"sub": "u1"}, None, algorithm="none")
    rejection(make(base, Session(requests.ConnectionError()), clock), token)


def test_algorithm_outside_allow_list_rejected(base, clock):
    token = jwt.encode({"sub": "u1"}, SECRET * 2, algorithm="HS512")
    rejection(make(base, Session(requests.ConnectionError()), clock), token)


def test_correctly_signed_token_of_an_algorithm_outside_allow_list_rejected(base, clock):
    settings = base.replace(jwt_secret="s" * 64)
    token = jwt.encode({"sub": "u1"}, settings.jwt.secret, algorithm="HS512")
    rejection(make(settings, Session(requests.ConnectionError()), clock), token)
    allowed = settings.replace(jwt_algorithms=("HS256", "HS512"))
    assert make(allowed, Session(requests.ConnectionError()), clock).resolve(token).user_id == "u1"


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


def test_rs256_accepted(base, clock, rsa_keys):
    private, public = rsa_keys
    settings = base.replace(jwt_algorithms=("RS256",), jwt_public_key=public)
    token = jwt.encode({"sub": "u3", "exp": LONG_AGO}, private, algorithm="RS256")
    resolver = make(settings, Session(requests.ConnectionError()), clock)
    assert resolver.resolve(token) == Identity("u3", "degraded")


def test_public_key_read_from_a_file(base, clock, rsa_keys, tmp_path):
    private, public = rsa_keys
    path = tmp_path / "public.pem"
    path.write_text(public)
    settings = base.replace(jwt_algorithms=("RS256",), jwt_public_key=str(path))
    token = jwt.encode({"sub": "u3"}, private, algorithm="RS256")
    assert make(settings, Session(requests.ConnectionError()), clock).resolve(token).user_id == "u3"


def test_public_key_from_a_certificate(base, clock, rsa_keys):
    private, _ = rsa_keys
    key = serialization.load_pem_private_key(private, None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auth.example")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2020, 1, 1))
        .not_valid_after(datetime(2040, 1, 1))
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    settings = base.replace(jwt_algorithms=("RS256",), jwt_public_key=pem)
    token = jwt.encode({"sub": "u3"}, private, algorithm="RS256")
    assert make(settings, Session(requests.ConnectionError()), clock).resolve(token).user_id == "u3"


def test_eddsa_accepted(base, clock):
    key = ed25519.Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings = base.replace(jwt_algorithms=("EdDSA",), jwt_public_key=public.decode())
    token = jwt.encode({"sub": "u4", "exp": LONG_AGO}, key, algorithm="EdDSA")
    resolver = make(settings, Session(requests.ConnectionError()), clock)
    assert resolver.resolve(token) == Identity("u4", "degraded")


def _hs256_signed_with(secret: str) -> str:
    # pyjwt refuses a PEM as an HMAC secret, so the attacker's token is signed by hand.
    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        + b"."
        + b64(json.dumps({"sub": "attacker"}).encode())
    )
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(signature)).decode()


@pytest.mark.parametrize("algorithms", [("RS256",), ("RS256", "HS256")])
def test_hs_rs_key_confusion_rejected(base, clock, rsa_keys, algorithms):
    _, public = rsa_keys
    settings = base.replace(jwt_algorithms=algorithms, jwt_public_key=public)
    token = _hs256_signed_with(public)
    rejection(make(settings, Session(requests.ConnectionError()), clock), token)


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"jwt_algorithms": ("RS256",)}, "CLICKSTREAM_JWT_PUBLIC_KEY"),
        (
            {
                "jwt_algorithms": ("RS256",),
                "jwt_public_key": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
            },
            "CLICKSTREAM_JWT_PUBLIC_KEY",
        ),
        (
            {"jwt_algorithms": ("RS256",), "jwt_public_key": "/nonexistent/clickstream.pem"},
            "CLICKSTREAM_JWT_PUBLIC_KEY",
        ),
        ({"jwt_secret": ""}, "CLICKSTREAM_JWT_SECRET"),
        ({"jwt_algorithms": ("HS256", "XS256")}, "CLICKSTREAM_JWT_ALGORITHMS"),
    ],
)
def test_unusable_key_settings_stop_start_up(base, clock, changes, variable):
    # The error names the setting to fix.
    with pytest.raises(ConfigError, match=variable):
        make(base.replace(**changes), Session(ok()), clock)


# Clients made by the resolver


@pytest.mark.parametrize("threads", [1, 4])
def test_default_session_pools_a_connection_per_thread_and_never_retries(
    base, clock, monkeypatch, threads
):
    used = []

    def request(session, method, url, **kwargs):
        used.append(session)
        return Response(401, {})

    monkeypatch.setattr(requests.Session, "request", request)
    resolver = IdentityResolver(
        base.auth, base.jwt, base.cache, pool_size=threads, clock=clock, monotonic=clock
    )
    assert resolver.check_auth_service()["ok"] is True
    (session,) = used
    for url in ("http://auth.example/verify", "https://auth.example/verify"):
        adapter = session.get_adapter(url)
        assert adapter.max_retries.total == 0  # a retry would multiply the timeout
        assert adapter.poolmanager.connection_from_url(url).pool.maxsize == threads


def test_from_settings_redis_client_has_short_timeouts_and_no_retries(base, clock, monkeypatch):
    made = []
    cache = FakeRedis()

    def from_url(url, **kwargs):
        made.append((url, kwargs))
        return cache

    monkeypatch.setattr(redis.Redis, "from_url", from_url)
    monkeypatch.setattr(requests.Session, "request", lambda *a, **k: pytest.fail("real HTTP"))
    settings = base.replace(redis_url="redis://cache.example:6379/2", redis_timeout_s=0.05)
    session = Session(ok(exp=NOW + 600))
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


# The token stays secret


def test_token_never_logged(base, clock, caplog):
    token = hs256({"sub": "u1"})
    resolver = make(base, Session(requests.ConnectionError(f"failed with {token}")), clock)
    with caplog.at_level(logging.DEBUG):
        resolver.resolve(token)
        with pytest.raises(TokenRejected):
            resolver.resolve(token + "x")
    assert caplog.records
    assert token not in caplog.text


def test_stats(base, clock):
    resolver = make(base, Session(ok(), Response(401, {})), clock)
    resolver.resolve(None)
    resolver.resolve("a")
    with pytest.raises(TokenRejected):
        resolver.resolve("b")
    stats = resolver.stats()
    assert stats["anonymous"] == 1
    assert stats["verified"] == 1
    assert stats["rejected"] == 1
    assert stats["auth_calls"] == 2
