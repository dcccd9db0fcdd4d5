"""validate -> resolve identity -> enrich -> publish, with plain arguments and no Flask globals."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from marshmallow import ValidationError

from core.host.fastload import compile_load
from core.host.registry import Registry
from core.ingest.errors import ApiError, flatten_messages
from core.ingest.identity import IdentityResolver, TokenRejected
from core.ingest.publisher import Publisher, PublishError
from core.ingest.useragent import UserAgentParser
from core.log import current_request_id
from core.message import DEFAULT_MAX_CLOCK_SKEW, EnvelopeSchema, build_message, encode

_ENVELOPE = EnvelopeSchema()
_FAST_ENVELOPE = compile_load(_ENVELOPE)


@dataclass(frozen=True)
class PreparedEvent:
    """A validated, enriched event ready for Kafka."""

    event_id: str
    key: str
    value: bytes


class PipelineObserver(Protocol):
    """What the pipeline reports as it works; ``core/api/metrics.py`` makes metrics of it."""

    def event_done(self, event: str, status: int) -> None:
        """One event answered: its type (or ``"unknown"``) and its status."""

    def publish_done(self, seconds: float) -> None:
        """One publish call (an event or a batch) returned after ``seconds``."""


class _Unobserved:
    def event_done(self, event: str, status: int) -> None:
        pass

    def publish_done(self, seconds: float) -> None:
        pass


class Pipeline:
    """Turns a client's parsed JSON into a published message, or an :class:`ApiError`."""

    def __init__(
        self,
        registry: Registry,
        identity: IdentityResolver,
        publisher: Publisher,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        observer: PipelineObserver | None = None,
        *,
        user_agents: UserAgentParser | None = None,
        max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
    ) -> None:
        self.registry = registry
        self.identity = identity
        self.publisher = publisher
        self._clock = clock
        self.observer = observer or _Unobserved()
        self.user_agents = user_agents or UserAgentParser()
        self.max_clock_skew = max_clock_skew

    def prepare(self, payload: Any, user_agent: str = "") -> PreparedEvent:
        """Validate and enrich one event; raises :class:`ApiError` naming the field at fault.

        ``user_agent`` is the request's User-Agent: the message's device, browser, OS and
        bot tag come from it.
        """
        received_at = self._clock()
        if not isinstance(payload, dict):
            raise ApiError(400, "invalid_body", "An event is a JSON object.")
        # One validation per event: the compiled loads accept what is valid; marshmallow
        # looks again only at what they do not vouch for, to decide and name the fields.
        envelope = _FAST_ENVELOPE(payload)
        if envelope is None:
            try:
                envelope = _ENVELOPE.load(payload)
            except ValidationError as error:
                raise _invalid(error.messages) from None
        event = envelope["event"]
        if event not in self.registry:
            raise ApiError(
                422,
                "unknown_event",
                f"Unknown event {event!r}.",
                {"event": [f"Unknown event. Known events: {', '.join(self.registry.names)}."]},
                extra={"known_events": self.registry.names},
            )
        data = envelope["data"]
        if self.registry.fast_load(event)(data) is None:
            try:
                self.registry.schema(event).load(data)
            except ValidationError as error:
                raise _invalid({"data": error.messages}) from None
        try:
            identity = self.identity.resolve(envelope["token"])
        except TokenRejected as rejection:
            raise ApiError(
                401, "invalid_token", str(rejection), {"token": [str(rejection)]}
            ) from None
        message = build_message(
            event,
            data,
            identity,
            received_at,
            self.registry[event].version,
            envelope=envelope,
            client=self.user_agents.classify(user_agent),
            max_clock_skew=self.max_clock_skew,
        )
        request_id = current_request_id()
        if request_id is not None:
            # The ETL logs it, so an event's log lines join up from API to warehouse.
            message["request_id"] = request_id
        return PreparedEvent(message["event_id"], event, encode(message))

    def ingest(self, payload: Any, user_agent: str = "") -> str:
        """Prepare one event and publish it; returns its ``event_id`` once Kafka acknowledged."""
        try:
            prepared = self.prepare(payload, user_agent)
            started = time.perf_counter()
            try:
                self.publisher.publish(prepared.key, prepared.value)
            except PublishError as error:
                raise unavailable(error.unconfirmed) from None
            finally:
                self.observer.publish_done(time.perf_counter() - started)
        except ApiError as error:
            self.observer.event_done(self.event_label(payload), error.status)
            raise
        self.observer.event_done(prepared.key, 202)
        return prepared.event_id

    def ingest_batch(self, payloads: list[Any], user_agent: str = "") -> list[dict[str, Any]]:
        """Each event validated and published on its own; one result per event, in order.

        A result is ``{"status": 202, "event_id": ...}`` or ``{"status": ..., "error": ...,
        "message": ..., "details": ...}``. Valid events are sent to Kafka together.
        """
        results: list[dict[str, Any]] = []
        prepared: list[tuple[int, PreparedEvent]] = []
        for index, payload in enumerate(payloads):
            try:
                event = self.prepare(payload, user_agent)
            except ApiError as error:
                results.append({"status": error.status, **error.to_dict()})
                continue
            results.append({"status": 202, "event_id": event.event_id})
            prepared.append((index, event))
        started = time.perf_counter()
        outcomes = self.publisher.publish_many([(event.key, event.value) for _, event in prepared])
        if prepared:
            self.observer.publish_done(time.perf_counter() - started)
        for (index, _), failure in zip(prepared, outcomes, strict=True):
            if failure is not None:
                error = unavailable(failure.unconfirmed)
                results[index] = {"status": error.status, **error.to_dict()}
        for payload, result in zip(payloads, results, strict=True):
            self.observer.event_done(self.event_label(payload), result["status"])
        return results

    def event_label(self, payload: Any) -> str:
        """The payload's event type if it is a known one, else ``"unknown"`` (for metrics)."""
        event = payload.get("event") if isinstance(payload, dict) else None
        return event if isinstance(event, str) and event in self.registry else "unknown"


def unavailable(unconfirmed: bool = False) -> ApiError:
    """The answer when the broker did not acknowledge: the client should retry.

    ``unconfirmed``: the event was sent and neither acknowledged nor spooled, so a stalled
    broker may store it yet; the client is told, since its resend may then be a second copy.
    """
    if unconfirmed:
        return ApiError(
            503,
            "unconfirmed",
            "Kafka did not confirm the event in time and it could not be spooled: it may "
            "still be stored; retry later (a resend may store it twice).",
            headers={"Retry-After": "1"},
        )
    return ApiError(
        503,
        "unavailable",
        "The event could not be stored right now; retry later.",
        headers={"Retry-After": "1"},
    )


def _invalid(messages: Any) -> ApiError:
    details = flatten_messages(messages)
    fields = ", ".join(sorted(details))
    return ApiError(422, "validation_error", f"Invalid event: {fields}.", details)
