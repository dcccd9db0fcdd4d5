"""The local JWT fallback is for outages only (issue 13), on the real Redis and an auth service
of the test's own, behind a stand-in for the proxy in front of it.

What must hold: a token the auth service refuses as malformed (400, 431) is a rejection and
never opens the circuit breaker for everyone; only connection errors, timeouts and 5xx count
toward the breaker; a 429 falls back for that event without counting; the development secret
stops start-up unless a development flag allows it; the fallback can bound the age of an
expired token, and takes an integer user id as the contract says.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urljoin

import jwt
import pytest
import requests

from auth_service.app import create_app as create_auth_app
from core.api import create_app
from core.api.extension import identity_of
from core.config import Settings
from core.ingest.identity import Identity, IdentityResolver, TokenRejected
from tests.reliability import load_and_count, read_event_ids, record, search_event
from tests.servers import serve, subprocess_env

pytestmark = pytest.mark.integration

#: The auth team's own key: tokens they issue are signed with it, not with clickstream's.
AUTH_TEAM_SECRET = "auth-team-secret-4f1c9b2e7a6d0385"
#: The longest header line nginx (8 KB buffers), gunicorn and Apache (8190 bytes) accept.
HEADER_LINE_LIMIT = 8190


class Proxy:
    """What stands in front of an auth service: a header-line limit (431 above it, as Node,
    nginx and gunicorn answer one way or another), and a count of verify calls."""

    def __init__(self, app, header_line_limit: int) -> None:
        self.app = app
        self.header_line_limit = header_line_limit
        self.verify_calls = 0

    def __call__(self, environ, start_response):
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if len("Authorization: ") + len(authorization) > self.header_line_limit:
            start_response("431 Request Header Fields Too Large", [("Content-Type", "text/html")])
            return [b"<html>431 Request Header Fields Too Large</html>"]
        if environ.get("PATH_INFO") == "/api/v1/auth/verify":
            self.verify_calls += 1
        return self.app(environ, start_response)


@dataclass
class AuthService:
    verify_url: str
    proxy: Proxy

    def login(self, user_id: str, ttl_s: float = 600) -> str:
        url = urljoin(self.verify_url, "login")
        answer = requests.post(url, json={"user_id": user_id, "ttl_s": ttl_s}, timeout=5)
        answer.raise_for_status()
        return answer.json()["token"]

    def revoke(self, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        requests.post(urljoin(self.verify_url, "revoke"), headers=headers, timeout=5)

    def fault(self, **fault: object) -> None:
        requests.post(urljoin(self.verify_url, "/_test/faults"), json=fault, timeout=5)


@contextmanager
def own_auth_service(header_line_limit: int = HEADER_LINE_LIMIT) -> Iterator[AuthService]:
    """An auth service of the test's own, signing with the auth team's key, behind a proxy."""
    proxy = Proxy(create_auth_app(AUTH_TEAM_SECRET), header_line_limit)
    with serve(proxy) as url:
        yield AuthService(f"{url}/api/v1/auth/verify", proxy)


@pytest.fixture
def auth_service(live_settings: Settings) -> Iterator[AuthService]:
    with own_auth_service() as service:
        yield service


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def forged(user_id: str, secret: str) -> str:
    """A token the auth service never issued, signed with ``secret``."""
    return jwt.encode({"sub": user_id, "exp": int(time.time()) + 600}, secret, algorithm="HS256")


def oversized(number: int, length: int = 8192) -> str:
    """A token as long as the envelope used to allow (8192): a common proxy answers 431."""
    return f"{number:04d}" + "x" * (length - 4)


# Item 5: a refusal of a malformed token is not an outage


def test_a_431_is_a_rejection_and_never_opens_the_breaker(live_settings):
    # A stricter proxy than most: tokens within clickstream's own bound still reach its limit.
    with own_auth_service(header_line_limit=2048) as auth_service:
        settings = live_settings.replace(
            auth_url=auth_service.verify_url, auth_breaker_failures=3, auth_breaker_reset_s=600
        )
        resolver = IdentityResolver.from_settings(settings)
        revoked = auth_service.login("eve")
        auth_service.revoke(revoked)

        for number in range(5):
            with pytest.raises(TokenRejected):
                resolver.resolve(oversized(number, length=3000))
        assert auth_service.proxy.verify_calls == 0  # the proxy answered each of them
        assert resolver.breaker.state == "closed"
        assert resolver.stats()["fallbacks"] == 0
        # The service still decides: a forged token and a revoked one are refused.
        with pytest.raises(TokenRejected):
            resolver.resolve(forged("admin", settings.jwt.secret))
        with pytest.raises(TokenRejected):
            resolver.resolve(revoked)
        # Once refused, the same token is answered from the cache.
        with pytest.raises(TokenRejected):
            resolver.resolve(oversized(0, length=3000))
        assert resolver.stats()["auth_calls"] == 7


def test_the_api_refuses_oversized_tokens_before_the_auth_service(live_settings, auth_service):
    settings = live_settings.replace(
        auth_url=auth_service.verify_url, auth_breaker_failures=3, auth_breaker_reset_s=600
    )
    app = create_app(settings)
    client = app.test_client()
    try:
        for number in range(5):
            answer = client.post("/api/v1/events", json=search_event(number, oversized(number)))
            assert answer.status_code == 422, answer.json
            assert "token" in answer.json["details"]
        assert auth_service.proxy.verify_calls == 0
        attack = search_event(9, forged("admin", settings.jwt.secret))
        assert client.post("/api/v1/events", json=attack).status_code == 401
        user = client.post("/api/v1/events", json=search_event(10, auth_service.login("ann")))
        assert user.status_code == 202
        assert identity_of(app).breaker.state == "closed"
    finally:
        app.extensions["clickstream.pipeline"].publisher.close()


def breaker_and_tokens(
    live_settings: Settings, auth_service: AuthService
) -> tuple[IdentityResolver, list[str]]:
    """A resolver of ``auth_service`` whose breaker opens after 2 failures and stays open,
    verifying locally with the auth team's secret, and the tokens of four users."""
    settings = live_settings.replace(
        auth_url=auth_service.verify_url,
        jwt_secret=AUTH_TEAM_SECRET,
        auth_breaker_failures=2,
        auth_breaker_reset_s=600,
    )
    tokens = [auth_service.login(f"user-{n}") for n in range(4)]
    return IdentityResolver.from_settings(settings), tokens


def test_a_400_from_the_auth_service_is_a_rejection(live_settings, auth_service):
    resolver, tokens = breaker_and_tokens(live_settings, auth_service)
    auth_service.fault(status=400)
    for token in tokens:
        with pytest.raises(TokenRejected):
            resolver.resolve(token)
    assert resolver.breaker.state == "closed"
    assert resolver.stats()["fallbacks"] == 0


def test_a_429_falls_back_for_that_event_without_opening_the_breaker(live_settings, auth_service):
    resolver, tokens = breaker_and_tokens(live_settings, auth_service)
    auth_service.fault(status=429)
    for number, token in enumerate(tokens):
        assert resolver.resolve(token) == Identity(f"user-{number}", "degraded")
    assert resolver.breaker.state == "closed"
    # Each token was put to the service, which decides again as soon as it can.
    assert resolver.stats()["auth_calls"] == len(tokens)
    auth_service.fault()
    revoked = auth_service.login("eve")
    auth_service.revoke(revoked)
    with pytest.raises(TokenRejected):
        resolver.resolve(revoked)


def test_5xx_still_opens_the_breaker(live_settings, auth_service):
    resolver, tokens = breaker_and_tokens(live_settings, auth_service)
    auth_service.fault(status=502)
    for token in tokens:
        assert resolver.resolve(token).mode == "degraded"
    assert resolver.breaker.state == "open"
    assert resolver.stats()["auth_calls"] == 2


# Item 5: the development secret


def start_up(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Import the WSGI entry point (which builds the app) the way gunicorn would."""
    return subprocess.run(
        [sys.executable, "-c", "import core.serve.wsgi"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_development_secret_stops_start_up_without_the_development_flag(live_settings):
    env = subprocess_env(live_settings)
    env.pop("CLICKSTREAM_JWT_ALLOW_DEV_SECRET", None)
    assert env["CLICKSTREAM_JWT_SECRET"] == Settings().jwt.secret

    refused = start_up(env)
    assert refused.returncode != 0
    assert "CLICKSTREAM_JWT_SECRET" in refused.stderr
    assert "CLICKSTREAM_JWT_ALLOW_DEV_SECRET" in refused.stderr

    assert start_up({**env, "CLICKSTREAM_JWT_SECRET": AUTH_TEAM_SECRET}).returncode == 0
    allowed = start_up({**env, "CLICKSTREAM_JWT_ALLOW_DEV_SECRET": "true"})
    assert allowed.returncode == 0, allowed.stderr

    # `make up`'s server says so in one line, before any worker starts.
    server = subprocess.run(
        [sys.executable, "-m", "core.serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert server.returncode == 1
    assert server.stderr.startswith("clickstream: CLICKSTREAM_JWT_SECRET is the development")
    assert "Traceback" not in server.stderr


# Item 5: a bound on the age of expired tokens in the fallback


def test_the_fallback_can_refuse_tokens_expired_too_long_ago(live_settings, login):
    down = live_settings.replace(auth_url=f"http://127.0.0.1:{closed_port()}/api/v1/auth/verify")
    long_ago, lately = login("old", ttl_s=-7200), login("recent", ttl_s=-60)

    ignoring = IdentityResolver.from_settings(down)
    assert ignoring.resolve(long_ago) == Identity("old", "degraded")

    bounded = IdentityResolver.from_settings(down.replace(jwt_max_expired_s=3600))
    with pytest.raises(TokenRejected):
        bounded.resolve(long_ago)
    assert bounded.resolve(lately) == Identity("recent", "degraded")
    never = jwt.encode({"sub": "forever"}, down.jwt.secret, algorithm="HS256")
    with pytest.raises(TokenRejected):
        bounded.resolve(never)


# Item 6: the contract's integer user id, during an outage


def test_an_integer_sub_is_a_user_id_while_the_auth_service_is_down(live_settings, read_topic):
    down = live_settings.replace(auth_url=f"http://127.0.0.1:{closed_port()}/api/v1/auth/verify")
    secret = down.jwt.secret
    numeric = jwt.encode({"sub": 42, "exp": int(time.time()) + 600}, secret, algorithm="HS256")
    with_jti = jwt.encode({"sub": 43, "jti": 7}, secret, algorithm="HS256")
    resolver = IdentityResolver.from_settings(down)
    assert resolver.resolve(numeric) == Identity("42", "degraded")
    assert resolver.resolve(with_jti) == Identity("43", "degraded")

    app = create_app(down)
    try:
        answer = app.test_client().post("/api/v1/events", json=search_event(1, numeric))
        assert answer.status_code == 202, answer.json
    finally:
        app.extensions["clickstream.pipeline"].publisher.close()
    ((_, message),) = read_topic(down.kafka.topic, 1)
    assert (message["user_id"], message["identity"]) == ("42", "degraded")


# Under traffic, counted from the API to the warehouse (a row of docs/reliability.md)


def deliver_and_record(scenario: str, settings: Settings, accepted: list[str], **notes) -> None:
    delivered = read_event_ids(settings.kafka.bootstrap, settings.kafka.topic, len(accepted))
    rows, events = load_and_count(settings)
    assert set(delivered) == set(accepted) and (rows, events) == (len(accepted), len(accepted))
    sent = notes.pop("sent")
    record(
        scenario,
        sent=sent,
        accepted=len(accepted),
        rows=rows,
        duplicates=len(delivered) - len(set(delivered)),
        lost=len(accepted) - events,
        **notes,
    )


def test_under_traffic_malformed_tokens_never_switch_verification_off(live_settings):
    with own_auth_service(header_line_limit=2048) as auth_service:
        settings = live_settings.replace(auth_url=auth_service.verify_url)
        users = [auth_service.login(f"user-{n}") for n in range(40)]
        app = create_app(settings)
        client = app.test_client()
        statuses: Counter[int] = Counter()
        accepted = []
        try:
            for number, token in enumerate(users):
                for bad in (oversized(number, 3000), oversized(number, 8192)):
                    refused = client.post("/api/v1/events", json=search_event(0, bad))
                    statuses[refused.status_code] += 1
                answer = client.post("/api/v1/events", json=search_event(number, token))
                assert answer.status_code == 202, answer.json
                accepted.append(answer.json["event_id"])
            forgery = search_event(99, forged("admin", settings.jwt.secret))
            statuses[client.post("/api/v1/events", json=forgery).status_code] += 1
            stats, breaker = identity_of(app).stats(), identity_of(app).breaker.state
        finally:
            app.extensions["clickstream.pipeline"].publisher.close()
    # 3000 characters pass the envelope and get the proxy's 431; 8192 never leave the API.
    assert statuses == {401: len(users) + 1, 422: len(users)}
    assert breaker == "closed" and stats["fallbacks"] == 0 and stats["verified"] == len(users)
    deliver_and_record(
        "Malformed tokens amid traffic (proxy answers 431, 8 KB tokens)",
        settings,
        accepted,
        sent=len(users) * 3 + 1,
        refused_401=statuses[401],
        refused_422=statuses[422],
        fallbacks=0,
    )


def test_under_traffic_a_429_falls_back_per_event_and_the_service_keeps_deciding(
    live_settings, auth_service
):
    settings = live_settings.replace(
        auth_url=auth_service.verify_url, jwt_secret=AUTH_TEAM_SECRET, auth_breaker_reset_s=600
    )
    users = [auth_service.login(f"user-{n}") for n in range(40)]
    auth_service.fault(status=429)
    app = create_app(settings)
    client = app.test_client()
    accepted = []
    try:
        for number, token in enumerate(users):
            answer = client.post("/api/v1/events", json=search_event(number, token))
            assert answer.status_code == 202, answer.json
            accepted.append(answer.json["event_id"])
        stats, breaker = identity_of(app).stats(), identity_of(app).breaker.state
    finally:
        app.extensions["clickstream.pipeline"].publisher.close()
    assert breaker == "closed" and stats["auth_calls"] == stats["degraded"] == len(users)
    deliver_and_record(
        "Auth service answering 429",
        settings,
        accepted,
        sent=len(users),
        auth_calls=stats["auth_calls"],
        degraded=stats["degraded"],
    )
