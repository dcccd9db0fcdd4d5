"""The HTTP contract of POST /api/v1/events and /batch (``core.api.events``), with the
identity service and Kafka faked."""

from __future__ import annotations

import re
import uuid

import orjson
import pytest

from core.config import Settings
from core.host.plugin_manager import build_registry, make_plugin_manager
from tests.fakes import FakePublisher

URL = "/api/v1/events"
EXAMPLES = {t.name: dict(t.example) for t in build_registry(make_plugin_manager())}


@pytest.fixture
def app_settings() -> Settings:
    return Settings.of(max_body_bytes=4096, ops_open=True)


def event(name: str, token: str | None = None, **data_changes) -> dict:
    data = {**EXAMPLES[name], **data_changes}
    return {"event": name, "token": token, "data": {k: v for k, v in data.items() if v != ...}}


def sent_message(publisher: FakePublisher) -> tuple[str, dict]:
    key, value = publisher.sent[-1]
    return key, orjson.loads(value)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_event_type_is_accepted_and_enriched(client, publisher, name) -> None:
    response = client.post(URL, json=event(name, token="user:42"))
    assert response.status_code == 202, response.json
    key, message = sent_message(publisher)
    assert key == name
    assert message["event_id"] == response.json["event_id"]
    uuid.UUID(message["event_id"])
    assert message["user_id"] == "42"
    assert message["identity"] == "verified"
    assert "token" not in message
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", message["timestamp"])
    assert message["data"] == EXAMPLES[name]


def test_no_token_means_anonymous(client, publisher) -> None:
    body = event("element_click")
    del body["token"]
    assert client.post(URL, json=body).status_code == 202
    assert sent_message(publisher)[1]["user_id"] == "anonymous"


def test_cyrillic_round_trips_unchanged(client, publisher) -> None:
    query = "комедии 2020 «Брат» ёлка"
    response = client.post(URL, json=event("search_filter", search_query=query))
    assert response.status_code == 202, response.json
    value = publisher.sent[-1][1]
    assert query.encode() in value
    assert orjson.loads(value)["data"]["search_query"] == query


def test_a_rejected_token_is_401_and_never_echoed(client, publisher) -> None:
    response = client.post(URL, json=event("element_click", token="forged-secret-token"))
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"
    assert "token" in response.json["details"]
    assert b"forged-secret-token" not in response.data
    assert publisher.sent == []


def test_a_broker_that_does_not_acknowledge_is_503_with_retry_after(client, publisher) -> None:
    publisher.failing = True
    response = client.post(URL, json=event("element_click"))
    assert response.status_code == 503
    assert response.headers["Retry-After"]


def test_unknown_event_lists_the_known_ones(client) -> None:
    response = client.post(URL, json={"event": "bogus", "token": None, "data": {}})
    assert response.status_code == 422
    assert response.json["error"] == "unknown_event"
    assert response.json["known_events"] == sorted(EXAMPLES)
    assert "event" in response.json["details"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"token": None, "data": {}}, "event"),
        ({"event": "element_click", "token": None}, "data"),
        ({"event": "element_click", "token": None, "data": None}, "data"),
        ({"event": "element_click", "token": None, "data": []}, "data"),
        ({"event": "", "token": None, "data": {}}, "event"),
        ({"event": 7, "token": None, "data": {}}, "event"),
        ({"event": "element_click", "token": 7, "data": {}}, "token"),
        ({"event": "element_click", "token": "", "data": {}}, "token"),
        ({"event": "element_click", "data": {}, "extra": 1}, "extra"),
        (event("quality_change", old_quality="720"), "data.old_quality"),
        (event("quality_change", old_quality=720.5), "data.old_quality"),
        (event("quality_change", old_quality=True), "data.old_quality"),
        (event("quality_change", new_quality=65536), "data.new_quality"),
        (event("quality_change", video_id=...), "data.video_id"),
        (event("quality_change", video_id=""), "data.video_id"),
        (event("search_filter", filters={"genre": "драма"}), "data.filters"),
        (event("quality_change", new_quality=-1080), "data.new_quality"),
        (event("video_complete", duration_total="true"), "data.duration_total"),
        (event("video_complete", duration_total=1), "data.duration_total"),
        (event("page_view_start", page_view_id="not-a-uuid"), "data.page_view_id"),
        (event("page_view_end", page_view_id=...), "data.page_view_id"),
        (event("page_view_start", page_type=""), "data.page_type"),
        (event("element_click", element_id="x" * 100_000), "data.element_id"),
        (event("element_click", unexpected="field"), "data.unexpected"),
    ],
)
def test_schema_errors_are_422_naming_the_field(client, publisher, body, field) -> None:
    response = client.post(URL, json=body)
    assert response.status_code in (413, 422), response.json
    if response.status_code == 422:
        assert response.json["error"] == "validation_error"
        assert field in response.json["details"], response.json
        assert field in response.json["message"]
    assert publisher.sent == []


@pytest.mark.parametrize(
    "raw", [b"{", b"not json", b'{"a": NaN}', b"\xff\xfe", b"", b"[1, 2]", b'"text"', b"null"]
)
def test_a_body_that_is_not_a_json_object_is_400(client, raw) -> None:
    response = client.post(URL, data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"] in ("invalid_json", "invalid_body")
    assert response.json["details"] or response.json["error"] == "invalid_body"


@pytest.mark.parametrize(
    "content_type",
    ["application/xml", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_an_unsupported_content_type_is_415(client, content_type) -> None:
    response = client.post(URL, data=b"{}", content_type=content_type)
    assert response.status_code == 415
    assert "Content-Type" in response.json["details"]


def test_a_beacon_body_sent_as_text_plain_is_accepted(client, publisher) -> None:
    body = event("element_click", token="user:7", element_id="кнопка", position=3)
    response = client.post(URL, data=orjson.dumps(body), content_type="text/plain;charset=UTF-8")
    assert response.status_code == 202
    key, message = sent_message(publisher)
    assert (key, message["event_id"], message["user_id"]) == (
        "element_click",
        response.json["event_id"],
        "7",
    )
    assert orjson.dumps(message["data"]) == orjson.dumps(body["data"])
    assert b"user:7" not in publisher.sent[-1][1]


def test_a_body_over_the_limit_is_413(client) -> None:
    body = orjson.dumps(event("search_filter", search_query="я" * 3000))
    response = client.post(URL, data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json["error"] == "request_entity_too_large"


BATCH = "/api/v1/events/batch"


def test_a_batch_answers_one_result_per_event_in_order(client, publisher) -> None:
    good = event("element_click", token="user:5")
    bad = event("quality_change", old_quality="720")
    rejected = event("element_click", token="bogus")
    response = client.post(BATCH, json=[good, bad, good, rejected, "not an object"])
    assert response.status_code == 200, response.json
    results = response.json["results"]
    assert [result["status"] for result in results] == [202, 422, 202, 401, 400]
    assert response.json["accepted"] == 2 and response.json["rejected"] == 3
    assert "data.old_quality" in results[1]["details"]
    sent_ids = [orjson.loads(value)["event_id"] for _, value in publisher.sent]
    assert sent_ids == [results[0]["event_id"], results[2]["event_id"]]


def test_a_batch_whose_broker_fails_reports_503_per_event(client, publisher) -> None:
    publisher.failing = True
    response = client.post(BATCH, json=[event("element_click")] * 3)
    assert [result["status"] for result in response.json["results"]] == [503] * 3


@pytest.mark.parametrize(
    ("body", "status"),
    [({"event": "element_click"}, 400), ([], 422), ([{"event": "x"}] * 501, 413)],
)
def test_a_malformed_batch_is_refused_whole(client, publisher, body, status) -> None:
    response = client.post(BATCH, json=body)
    assert response.status_code == status
    assert response.json["error"]
    assert publisher.sent == []


GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
VISITOR = {"anonymous_id": "anon-1", "session_id": "sess-1", "sent_at": "2026-11-28T10:00:00Z"}


@pytest.mark.parametrize("content_type", ["application/json", "text/plain;charset=UTF-8"])
def test_the_visitor_fields_and_the_user_agent_reach_the_message(
    client, publisher, content_type: str
) -> None:
    body = orjson.dumps({**event("element_click"), **VISITOR})
    headers = {"Content-Type": content_type, "User-Agent": GOOGLEBOT}
    assert client.post(URL, data=body, headers=headers).status_code == 202
    assert client.post(URL + "/batch", data=b"[" + body + b"]", headers=headers).status_code == 200
    for _, value in publisher.sent:
        message = orjson.loads(value)
        assert (message["anonymous_id"], message["session_id"]) == ("anon-1", "sess-1")
        assert message["sent_at"] == "2026-11-28T10:00:00.000Z"
        assert (message["browser"], message["is_bot"]) == ("Googlebot", True)


def test_a_bad_anonymous_id_is_a_422_naming_it(client, publisher) -> None:
    response = client.post(URL, json={**event("element_click"), "anonymous_id": ""})
    assert response.status_code == 422
    assert list(response.json["details"]) == ["anonymous_id"]
    assert publisher.sent == []


def test_the_clock_skew_bound_is_a_setting(make_app, publisher) -> None:
    client = make_app(api_max_clock_skew_s=60).test_client()
    assert client.post(URL, json={**event("element_click"), **VISITOR}).status_code == 202
    _, message = sent_message(publisher)
    assert message["sent_at"] is not None and message["client_time"] is None


def test_answers_are_the_bytes_flasks_json_provider_writes(app, client) -> None:
    """orjson writes them (a batch's results cost far less), with the keys sorted and the
    trailing newline of Flask's provider, so no client sees a difference."""
    valid = [event(name) for name in sorted(EXAMPLES)]
    refused = [{"event": "nope", "data": {}}, {"event": "element_click", "data": {"é": "\u2028"}}]
    for url, body in ((URL, valid[0]), (f"{URL}/batch", [*valid, *refused, 7])):
        answer = client.post(url, data=orjson.dumps(body), content_type="application/json")
        with app.app_context():
            assert answer.data == app.json.response(answer.json).data
        assert answer.mimetype == "application/json"
