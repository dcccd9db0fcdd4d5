"""Stand-ins the tests share: for the identity resolver and the Kafka publisher, for the
auth service, Redis and the clock the resolver uses, and a plugin of the tests' own; and
reading what came out (a Prometheus scrape).
"""

from __future__ import annotations

import json

from flask import Blueprint, Flask
from marshmallow import Schema
from prometheus_client.parser import text_string_to_metric_families

from core.api import ops
from core.host.fields import Text
from core.ingest.identity import Identity, IdentityResolver, TokenRejected
from core.ingest.publisher import PublishError


class FakeIdentity:
    """Accepts tokens of the form ``user:<id>``, rejects every other token."""

    def resolve(self, token: str | None) -> Identity:
        if token is None:
            return Identity("anonymous", "anonymous")
        if token.startswith("user:"):
            return Identity(token.removeprefix("user:"), "verified")
        raise TokenRejected("The token was rejected.")

    def check_cache(self) -> dict:
        return {"ok": True, "detail": "fake"}

    def check_auth_service(self) -> dict:
        return {"ok": True, "detail": "fake"}


class FakePublisher:
    """Records what it was given; ``failing`` makes it refuse like a broker that is down."""

    topic = "fake"

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.failing = False

    def publish_many(self, messages):
        if self.failing:
            return [PublishError("down")] * len(messages)
        self.sent.extend(messages)
        return [None] * len(messages)

    def publish(self, key: str, value: bytes) -> None:
        error = self.publish_many([(key, value)])[0]
        if error is not None:
            raise error

    def check(self) -> dict:
        return {"ok": not self.failing, "detail": "fake"}

    def close(self) -> None:
        """Like :meth:`core.ingest.publisher.Publisher.close`; a fake holds no connection."""

    def check_spool(self) -> dict:
        return {"ok": False, "detail": "the fake has no spool", "depth_events": 0, "bytes": 0}


# The identity resolver's own dependencies: the auth service's answers, Redis, the clock.

NOW = 1_800_000_000.0


class Clock:
    """Time that only moves when a test says so."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeResponse:
    """An answer of the auth service, as ``requests`` gives it."""

    def __init__(self, status_code: int, body: object = None) -> None:
        self.status_code = status_code
        self._body = body

    def json(self) -> object:
        if isinstance(self._body, str):
            return json.loads(self._body)
        return self._body


class FakeSession:
    """Answers every request with the next item of ``answers`` (repeating the last)."""

    def __init__(self, *answers: FakeResponse | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[dict] = []

    def request(self, method: str, url: str, **kwargs) -> FakeResponse:
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


def ok(user_id: str = "u1", exp: float | None = NOW + 600) -> FakeResponse:
    """The auth service accepting a token of ``user_id``, valid until ``exp``."""
    body: dict = {"user_id": user_id}
    if exp is not None:
        body["exp"] = exp
    return FakeResponse(200, body)


def make_resolver(settings, session: FakeSession, clock: Clock, cache=None, **changes):
    """An identity resolver of ``settings`` (with ``changes``) on these stand-ins."""
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


# The API's own stand-ins


def with_ops_probe(app: Flask) -> Flask:
    """``app`` with ``GET /ops-probe``, an operational endpoint (``core.api.ops``) of the tests."""
    probe = ops.protect(Blueprint("probe", __name__))
    probe.get("/ops-probe")(lambda: {"ok": True})
    app.register_blueprint(probe)
    return app


class NoteSchema(Schema):
    """The ``data`` of ``note_added``, the event type of the tests' own plugins."""

    text = Text(required=True, max_length=10)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus scrape, by name and labels (0 when absent)."""
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
