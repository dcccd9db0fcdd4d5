"""The pipeline's promises on the message it builds: server time, no token, known types only.

Pure logic: the identity resolver and the publisher are fakes, the clock is injected.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

import core.ingest.pipeline
from core import EventType
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.host.registry import Registry
from core.ingest.errors import ApiError
from core.ingest.pipeline import Pipeline
from core.ingest.publisher import PublishError
from tests.etl_helpers import NOTES_DDL
from tests.fakes import FakeIdentity, FakePublisher, NoteSchema

REGISTRY = build_registry(make_plugin_manager())
CLICK = {
    "event": "element_click",
    "token": None,
    "data": {"element_type": "trailer", "page_type": "movie"},
}
#: A receive time with a microsecond part and a non-UTC zone, so rounding and zones show.
RECEIVED = datetime(2026, 11, 28, 13, 4, 5, 678901, tzinfo=timezone(timedelta(hours=3)))


def pipeline(publisher: FakePublisher, clock=lambda: RECEIVED) -> Pipeline:
    return Pipeline(REGISTRY, FakeIdentity(), publisher, clock=clock)


def published(publisher: FakePublisher) -> list[dict]:
    return [orjson.loads(value) for _, value in publisher.sent]


def test_the_timestamp_is_the_server_clock_at_receipt_in_utc_milliseconds(publisher) -> None:
    pipeline(publisher).ingest(CLICK)
    [message] = published(publisher)
    assert message["timestamp"] == "2026-11-28T10:04:05.678Z"


def test_each_event_of_a_batch_is_stamped_when_it_is_read(publisher) -> None:
    moments = iter([RECEIVED, RECEIVED + timedelta(milliseconds=5)])
    pipeline(publisher, clock=lambda: next(moments)).ingest_batch([CLICK, CLICK])
    stamps = [message["timestamp"] for message in published(publisher)]
    assert stamps == ["2026-11-28T10:04:05.678Z", "2026-11-28T10:04:05.683Z"]


def test_the_real_clock_is_used_by_default(publisher) -> None:
    before = datetime.now(UTC)
    Pipeline(REGISTRY, FakeIdentity(), publisher).ingest(CLICK)
    after = datetime.now(UTC)
    [message] = published(publisher)
    stamp = datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00"))
    assert before - timedelta(milliseconds=1) <= stamp <= after


@pytest.mark.parametrize("where", ["envelope", "data"])
def test_a_client_timestamp_is_refused_not_trusted(publisher, where: str) -> None:
    body = {**CLICK, "data": dict(CLICK["data"])}
    (body if where == "envelope" else body["data"])["timestamp"] = "2001-01-01T00:00:00.000Z"
    with pytest.raises(ApiError) as refused:
        pipeline(publisher).ingest(body)
    assert refused.value.status == 422
    field = "timestamp" if where == "envelope" else "data.timestamp"
    assert set(refused.value.details) == {field}
    assert publisher.sent == []


def test_the_message_has_the_server_fields_and_not_the_token(publisher) -> None:
    event_id = pipeline(publisher).ingest({**CLICK, "token": "user:42"})
    [(key, value)] = publisher.sent
    message = orjson.loads(value)
    assert key == "element_click"
    assert set(message) == {
        "event_id",
        "event",
        "timestamp",
        "user_id",
        "identity",
        "schema_version",
        "anonymous_id",
        "session_id",
        "sent_at",
        "client_time",
        "device",
        "browser",
        "os",
        "is_bot",
        "data",
    }
    assert (message["event_id"], message["user_id"], message["identity"]) == (
        event_id,
        "42",
        "verified",
    )
    assert message["schema_version"] == REGISTRY["element_click"].version
    assert b"user:42" not in value


@pytest.mark.parametrize("event", ["page_view", "Element_click", "element_click ", "rating"])
def test_an_unknown_event_type_is_refused_alone_and_in_a_batch(publisher, event: str) -> None:
    body = {**CLICK, "event": event}
    with pytest.raises(ApiError) as refused:
        pipeline(publisher).ingest(body)
    assert (refused.value.status, refused.value.code) == (422, "unknown_event")
    results = pipeline(publisher).ingest_batch([body, CLICK])
    assert [result["status"] for result in results] == [422, 202]
    assert [key for key, _ in publisher.sent] == ["element_click"]


def test_the_message_names_its_event_type(publisher) -> None:
    pipeline(publisher).ingest(CLICK)
    [message] = published(publisher)
    assert message["event"] == "element_click"


def test_the_api_records_the_event_types_version_in_the_message() -> None:
    event_type = EventType("note_added", NoteSchema, "notes", NOTES_DDL, {"text": "hi"}, version=3)
    pipeline = Pipeline(Registry([("test", [event_type])]), FakeIdentity(), FakePublisher())
    prepared = pipeline.prepare({"event": "note_added", "data": {"text": "bye"}})
    assert orjson.loads(prepared.value)["schema_version"] == 3


def test_a_body_that_is_not_an_object_is_400_saying_so(publisher) -> None:
    with pytest.raises(ApiError) as refused:
        pipeline(publisher).ingest([CLICK])
    assert (refused.value.status, refused.value.code) == (400, "invalid_body")
    assert refused.value.message == "An event is a JSON object."


def test_an_invalid_event_names_every_field_at_fault(publisher) -> None:
    with pytest.raises(ApiError) as refused:
        pipeline(publisher).ingest({**CLICK, "data": {}})
    assert refused.value.message == "Invalid event: data.element_type, data.page_type."
    assert set(refused.value.details) == {"data.element_type", "data.page_type"}


def test_an_unknown_event_type_is_named_and_the_known_ones_listed(publisher) -> None:
    with pytest.raises(ApiError) as refused:
        pipeline(publisher).ingest({**CLICK, "event": "rating"})
    assert refused.value.message == "Unknown event 'rating'."
    known = ", ".join(REGISTRY.names)
    assert refused.value.details == {"event": [f"Unknown event. Known events: {known}."]}
    assert refused.value.extra == {"known_events": REGISTRY.names}


def test_a_rejected_token_is_401_with_the_reason_of_the_rejection(publisher) -> None:
    with pytest.raises(ApiError) as refused:
        pipeline(publisher).ingest({**CLICK, "token": "forged"})
    assert (refused.value.status, refused.value.code) == (401, "invalid_token")
    assert refused.value.message == "The token was rejected."
    assert refused.value.details == {"token": ["The token was rejected."]}
    assert publisher.sent == []


UNAVAILABLE = {
    "status": 503,
    "error": "unavailable",
    "message": "The event could not be stored right now; retry later.",
    "details": {},
}


def test_an_unacknowledged_event_is_503_telling_the_client_to_retry(publisher) -> None:
    publisher.failing = True
    with pytest.raises(ApiError) as refused:
        pipeline(publisher).ingest(CLICK)
    assert {"status": refused.value.status, **refused.value.to_dict()} == UNAVAILABLE
    [(name, seconds)] = refused.value.headers.items()
    assert name.lower() == "retry-after" and int(seconds) >= 1


def test_a_batch_answers_503_for_each_valid_event_the_broker_did_not_take(publisher) -> None:
    publisher.failing = True
    results = pipeline(publisher).ingest_batch([CLICK, {**CLICK, "event": "rating"}])
    assert results[0] == UNAVAILABLE
    assert results[1]["status"] == 422


class UnconfirmedPublisher(FakePublisher):
    """Its sends timed out after leaving, and the spool could not take them."""

    def publish_many(self, messages):
        return [PublishError("timed out", unconfirmed=True)] * len(messages)


def test_an_event_sent_but_neither_acknowledged_nor_spooled_is_503_unconfirmed() -> None:
    """A stalled broker may store it yet: the client hears that its resend may be a copy."""
    with pytest.raises(ApiError) as refused:
        pipeline(UnconfirmedPublisher()).ingest(CLICK)
    assert (refused.value.status, refused.value.code) == (503, "unconfirmed")
    assert "may still be stored" in refused.value.message
    assert "retry-after" in {name.lower() for name in refused.value.headers}
    [result] = pipeline(UnconfirmedPublisher()).ingest_batch([CLICK])
    assert (result["status"], result["error"]) == (503, "unconfirmed")


class ShortPublisher(FakePublisher):
    """Answers one outcome fewer than it was given messages: a broken publisher."""

    def publish_many(self, messages):
        return super().publish_many(messages)[:-1]


def test_a_batch_never_answers_202_for_an_event_the_publisher_did_not_answer() -> None:
    with pytest.raises(ValueError):
        pipeline(ShortPublisher()).ingest_batch([CLICK, CLICK])


class Stopwatch:
    """Stands in for the ``time`` module: ``perf_counter`` moves 0.25 s per reading."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        self.now += 0.25
        return self.now


class Observer:
    def __init__(self) -> None:
        self.publishes: list[float] = []
        self.events: list[tuple[str, int]] = []

    def publish_done(self, seconds: float) -> None:
        self.publishes.append(seconds)

    def event_done(self, event: str, status: int) -> None:
        self.events.append((event, status))


@pytest.mark.parametrize("batch", [False, True])
def test_the_observer_gets_the_time_a_publish_took(publisher, monkeypatch, batch: bool) -> None:
    monkeypatch.setattr(core.ingest.pipeline, "time", Stopwatch())
    observer = Observer()
    subject = Pipeline(
        REGISTRY, FakeIdentity(), publisher, clock=lambda: RECEIVED, observer=observer
    )
    subject.ingest_batch([CLICK, CLICK]) if batch else subject.ingest(CLICK)
    assert observer.publishes == [0.25]


# The visitor's envelope fields (issue 14): optional, bounded, carried into the message.

VISITOR = {
    "anonymous_id": "a" * 128,
    "session_id": "5b7c",
    "sent_at": "2026-11-28T13:04:00.678+03:00",
}


def test_without_the_visitor_fields_an_event_is_accepted_as_before(publisher) -> None:
    pipeline(publisher).ingest(CLICK)
    [message] = published(publisher)
    assert [message[key] for key in ("anonymous_id", "session_id", "sent_at", "client_time")] == [
        None
    ] * 4
    assert (message["device"], message["browser"], message["os"], message["is_bot"]) == (
        "",
        "",
        "",
        False,
    )


def test_the_visitor_fields_travel_in_the_message_in_single_and_batch_posts(publisher) -> None:
    pipeline(publisher).ingest({**CLICK, **VISITOR})
    pipeline(publisher).ingest_batch([{**CLICK, **VISITOR}])
    for message in published(publisher):
        assert message["anonymous_id"] == "a" * 128
        assert message["session_id"] == "5b7c"
        assert message["sent_at"] == "2026-11-28T10:04:00.678Z"
        # Five seconds behind the server's clock: within the bound, so corrected by it.
        assert message["client_time"] == "2026-11-28T10:04:00.678Z"


def test_explicit_nulls_are_the_same_as_leaving_the_fields_out(publisher) -> None:
    nulls = {"anonymous_id": None, "session_id": None, "sent_at": None}
    pipeline(publisher).ingest({**CLICK, **nulls})
    [message] = published(publisher)
    assert message["anonymous_id"] is message["sent_at"] is message["client_time"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("anonymous_id", ""),
        ("anonymous_id", "a" * 129),
        ("anonymous_id", 42),
        ("session_id", ""),
        ("session_id", "s" * 129),
        ("session_id", ["s"]),
        ("sent_at", "2026-11-28T10:00:00"),
        ("sent_at", "yesterday"),
        ("sent_at", 1764324000),
        ("sent_at", "1800-01-01T00:00:00Z"),
    ],
)
def test_an_invalid_visitor_field_is_a_422_naming_it(publisher, field: str, value) -> None:
    with pytest.raises(ApiError) as refused:
        pipeline(publisher).ingest({**CLICK, field: value})
    assert refused.value.status == 422
    assert set(refused.value.details) == {field}
    [result] = pipeline(publisher).ingest_batch([{**CLICK, field: value}])
    assert result["status"] == 422 and set(result["details"]) == {field}
    assert publisher.sent == []


def test_the_user_agent_is_classified_into_the_message(publisher) -> None:
    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    pipeline(publisher).ingest(CLICK, googlebot)
    [message] = published(publisher)
    assert message["is_bot"] is True
    assert message["browser"] == "Googlebot"


def test_a_clock_skew_beyond_the_bound_stores_no_client_time(publisher) -> None:
    bounded = Pipeline(
        REGISTRY,
        FakeIdentity(),
        publisher,
        clock=lambda: RECEIVED,
        max_clock_skew=timedelta(seconds=60),
    )
    late = {**CLICK, "sent_at": "2026-11-28T10:02:05.678Z"}
    early = {**CLICK, "sent_at": "2026-11-28T10:06:05.678Z"}
    within = {**CLICK, "sent_at": "2026-11-28T10:03:35.678Z"}
    bounded.ingest_batch([late, early, within])
    times = [(m["sent_at"], m["client_time"]) for m in published(publisher)]
    assert times == [
        ("2026-11-28T10:02:05.678Z", None),
        ("2026-11-28T10:06:05.678Z", None),
        ("2026-11-28T10:03:35.678Z", "2026-11-28T10:03:35.678Z"),
    ]
