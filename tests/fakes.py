"""Stand-ins for the identity resolver and the Kafka publisher, for unit tests of pure logic."""

from __future__ import annotations

from core.ingest.identity import Identity, TokenRejected
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
