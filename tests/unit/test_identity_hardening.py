"""Issue 13: what counts as an auth service outage, the development secret, the token's
bound and the fallback's claims; with a fake auth service and a fake clock."""

from __future__ import annotations

import logging

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from core.config import ConfigError, Settings
from core.ingest.identity import Identity, IdentityResolver, TokenRejected
from core.message import MAX_TOKEN_LENGTH, EnvelopeSchema

NOW = 1_800_000_000.0
SECRET = "a-secret-of-our-own-0123456789abcdef"
DEV = Settings()  # the shipped defaults: the development secret
PUBLIC_KEY = (
    ed25519.Ed25519PrivateKey.generate()
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class Answer:
    def __init__(self, status_code: int, body: object = None) -> None:
        self.status_code = status_code
        self._body = body

    def json(self) -> object:
        if self._body is None:
            raise ValueError("not JSON")
        return self._body


class Session:
    """Answers with the next of ``answers`` (repeating the last), counting the calls."""

    def __init__(self, *answers: Answer | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    def request(self, method: str, url: str, **kwargs) -> Answer:
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def settings(**changes) -> Settings:
    return Settings.of(
        auth_breaker_failures=2, auth_breaker_reset_s=5.0, jwt_secret=SECRET, **changes
    )


def resolver(session: Session, clock: Clock, **changes) -> IdentityResolver:
    chosen = settings(**changes)
    return IdentityResolver(
        chosen.auth, chosen.jwt, chosen.cache, None, session, clock=clock, monotonic=clock
    )


def token(number: int, **claims) -> str:
    claims = {"sub": f"u{number}", "exp": NOW + 600} | claims
    return jwt.encode(claims, SECRET, algorithm="HS256")


# Item 5: only no answer, or a 5xx, is an outage that counts


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (Answer(401, {}), "rejected"),
        (Answer(403, {}), "rejected"),
        (Answer(400), "rejected"),  # the service, or its proxy: this token is malformed
        (Answer(431), "rejected"),  # ... or too large for a header
        (Answer(500), "counted"),
        (Answer(502), "counted"),
        (Answer(503), "counted"),
        (Answer(504), "counted"),
        (requests.ConnectionError("refused"), "counted"),
        (requests.Timeout("slow"), "counted"),
        (Answer(429), "not counted"),  # overloaded: fall back for this event, keep asking
        (Answer(404), "not counted"),
        (Answer(405), "not counted"),
        (Answer(302), "not counted"),
        (Answer(200, "<html>"), "not counted"),
        (Answer(200, {"no": "user id"}), "not counted"),
    ],
    ids=lambda value: (
        str(value.status_code) if isinstance(value, Answer) else getattr(value, "__name__", value)
    ),
)
def test_what_each_answer_means(answer, outcome) -> None:
    session = Session(answer)
    subject = resolver(session, Clock())
    for number in range(4):
        if outcome == "rejected":
            with pytest.raises(TokenRejected):
                subject.resolve(token(number))
        else:
            assert subject.resolve(token(number)) == Identity(f"u{number}", "degraded")
    expected = {"rejected": "closed", "counted": "open", "not counted": "closed"}[outcome]
    assert subject.breaker.state == expected
    assert session.calls == (2 if outcome == "counted" else 4)
    assert subject.stats()["fallbacks"] == (0 if outcome == "rejected" else 4)


def test_a_rejection_for_a_malformed_token_is_cached_like_a_401() -> None:
    session = Session(Answer(431))
    subject = resolver(session, Clock())
    for _ in range(3):
        with pytest.raises(TokenRejected):
            subject.resolve(token(1))
    assert session.calls == 1


def test_an_answer_that_does_not_count_leaves_a_half_open_breaker_to_the_next_trial() -> None:
    clock = Clock()
    session = Session(Answer(503), Answer(503), Answer(429), Answer(200, {"user_id": "u9"}))
    subject = resolver(session, clock)
    for number in range(2):
        subject.resolve(token(number))
    assert subject.breaker.state == "open"
    clock.now += 6
    assert subject.resolve(token(8)).mode == "degraded"  # the trial got a 429
    assert subject.breaker.state == "half_open"
    assert subject.resolve(token(9)) == Identity("u9", "verified")
    assert subject.breaker.state == "closed"


def test_tokens_are_bounded_well_below_common_header_limits() -> None:
    # nginx, gunicorn and Apache take 8190 bytes a header line, "Authorization: Bearer " included.
    assert MAX_TOKEN_LENGTH <= 4096
    errors = EnvelopeSchema().validate({"event": "e", "data": {}, "token": "a" * 4097})
    assert "token" in errors
    session = Session(Answer(200, {"user_id": "u1"}))
    with pytest.raises(TokenRejected):
        resolver(session, Clock()).resolve("a" * (MAX_TOKEN_LENGTH + 1))
    assert session.calls == 0


# Item 5: the development secret


def test_the_development_secret_stops_start_up() -> None:
    with pytest.raises(ConfigError) as refused:
        IdentityResolver(DEV.auth, DEV.jwt, DEV.cache, None, Session(Answer(401, {})))
    assert "CLICKSTREAM_JWT_SECRET" in str(refused.value)
    assert "CLICKSTREAM_JWT_ALLOW_DEV_SECRET" in str(refused.value)


def test_the_development_flag_allows_it_with_a_warning(caplog) -> None:
    allowed = Settings.of(jwt_allow_dev_secret=True)
    with caplog.at_level(logging.WARNING):
        IdentityResolver(allowed.auth, allowed.jwt, allowed.cache, None, Session(Answer(401)))
    assert "development" in caplog.text


def test_a_secret_of_ones_own_or_no_hmac_needs_no_flag() -> None:
    own = Settings.of(jwt_secret=SECRET)
    IdentityResolver(own.auth, own.jwt, own.cache, None, Session(Answer(401)))
    asymmetric = Settings.of(jwt_algorithms=("EdDSA",), jwt_public_key=PUBLIC_KEY)
    IdentityResolver(asymmetric.auth, asymmetric.jwt, asymmetric.cache, None, Session(Answer(401)))


# Item 5: how long after its expiry the fallback still takes a token


def test_expiry_is_ignored_by_default_and_bounded_when_asked() -> None:
    down = requests.ConnectionError("refused")
    assert Settings().jwt.max_expired_s == float("inf")
    expired = token(1, exp=NOW - 7200)
    assert resolver(Session(down), Clock()).resolve(expired).mode == "degraded"

    bounded = resolver(Session(down), Clock(), jwt_max_expired_s=3600)
    with pytest.raises(TokenRejected):
        bounded.resolve(expired)
    assert bounded.resolve(token(2, exp=NOW - 60)).mode == "degraded"
    assert bounded.resolve(token(3)).mode == "degraded"
    with pytest.raises(TokenRejected):  # a token that never expires has no age to bound
        bounded.resolve(jwt.encode({"sub": "u4"}, SECRET, algorithm="HS256"))
    strict = resolver(Session(down), Clock(), jwt_max_expired_s=0)
    with pytest.raises(TokenRejected):
        strict.resolve(token(5, exp=NOW - 1))


def test_the_setting_reads_inf_and_numbers() -> None:
    assert Settings.from_env({"CLICKSTREAM_JWT_MAX_EXPIRED_S": "inf"}).jwt.max_expired_s > 1e308
    assert Settings.from_env({"CLICKSTREAM_JWT_MAX_EXPIRED_S": "900"}).jwt.max_expired_s == 900
    with pytest.raises(ConfigError):
        Settings.from_env({"CLICKSTREAM_JWT_MAX_EXPIRED_S": "-1"})
    assert Settings.from_env(Settings().to_env()) == Settings()


# Item 6: the fallback takes the claims the contract allows


@pytest.mark.parametrize(
    ("claims", "user_id"),
    [
        ({"sub": 42}, "42"),
        ({"sub": "u1", "jti": 7}, "u1"),  # the fallback has no use for jti: any type
        ({"uid": 5, "sub": 9}, "5"),
    ],
)
def test_integer_claims_are_taken(claims, user_id) -> None:
    down = requests.ConnectionError("refused")
    claim = "uid" if "uid" in claims else "sub"
    subject = resolver(Session(down), Clock(), jwt_user_id_claim=claim)
    assert subject.resolve(token(0, **claims)) == Identity(user_id, "degraded")


@pytest.mark.parametrize("sub", [True, "", "  ", 4.5, None, [1], {"id": 1}])
def test_other_user_ids_are_refused(sub) -> None:
    subject = resolver(Session(requests.ConnectionError("refused")), Clock())
    with pytest.raises(TokenRejected):
        subject.resolve(token(0, sub=sub))
