"""Ingestion end to end on the real Kafka broker, Redis and reference auth service."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from marshmallow import Schema

from core import EventType, hookimpl
from core.api.extension import settings_of
from core.host.fields import PositiveInteger
from core.host.plugin_manager import make_plugin_manager
from core.message import ENVELOPE_COLUMNS_DDL

URL = "/api/v1/events"
CLOSED_PORT_URL = "http://127.0.0.1:9/api/v1/auth/verify"


@pytest.fixture
def app(live_app):
    return live_app


@pytest.fixture
def client(live_client):
    return live_client


def examples(app) -> dict[str, dict]:
    return {t.name: dict(t.example) for t in app.extensions["clickstream.pipeline"].registry}


def test_every_seed_event_reaches_kafka_anonymous_and_logged_in(
    app, client, live_settings, read_topic, login
) -> None:
    token = login("user-42")
    sent = {}
    for name, data in examples(app).items():
        for tok in (None, token):
            response = client.post(URL, json={"event": name, "token": tok, "data": data})
            assert response.status_code == 202, response.json
            sent[response.json["event_id"]] = (name, tok)
    records = read_topic(live_settings.kafka.topic, len(sent))
    assert len(records) == len(sent)
    for key, message in records:
        name, tok = sent[message["event_id"]]
        assert key == name == message["event"]
        assert "token" not in message
        assert token not in str(message)
        assert message["user_id"] == ("user-42" if tok else "anonymous")
        assert message["identity"] == ("verified" if tok else "anonymous")
        assert message["timestamp"].endswith("Z")
        assert message["data"] == examples(app)[name]


def test_cyrillic_round_trips_through_kafka(client, live_settings, read_topic) -> None:
    query = "фильмы про космос 2024 — ёжик"
    body = {"event": "search_filter", "token": None, "data": {"search_query": query, "filters": ""}}
    assert client.post(URL, json=body).status_code == 202
    [(_, message)] = read_topic(live_settings.kafka.topic, 1)
    assert message["data"]["search_query"] == query


def _expired_token(secret: str, user_id: str) -> str:
    past = int(time.time()) - 3600
    return jwt.encode({"sub": user_id, "iat": past - 60, "exp": past}, secret, algorithm="HS256")


def test_auth_service_down_falls_back_to_the_jwt_even_when_expired(
    make_live_app, read_topic
) -> None:
    app = make_live_app(auth_url=CLOSED_PORT_URL)
    settings, client = settings_of(app), app.test_client()
    token = _expired_token(settings.jwt.secret, "user-7")
    body = {"event": "video_complete", "token": token, "data": _video_complete()}
    assert client.post(URL, json=body).status_code == 202
    [(_, message)] = read_topic(settings.kafka.topic, 1)
    assert message["user_id"] == "user-7"
    assert message["identity"] == "degraded"


@pytest.mark.parametrize("auth_url_down", [False, True])
def test_forged_or_unsigned_tokens_are_401(make_live_app, auth_url_down) -> None:
    changes = {"auth_url": CLOSED_PORT_URL} if auth_url_down else {}
    client = make_live_app(**changes).test_client()
    forged = jwt.encode(
        {"sub": "mallory", "exp": int(time.time()) + 600}, "wrong-secret-0123456789abcdef0123"
    )
    unsigned = jwt.encode({"sub": "mallory"}, None, algorithm="none")
    for token in (forged, unsigned):
        body = {"event": "video_complete", "token": token, "data": _video_complete()}
        response = client.post(URL, json=body)
        assert response.status_code == 401, response.json
        assert token not in response.get_data(as_text=True)


def test_redis_down_still_accepts_logged_in_events(make_live_app, read_topic, login) -> None:
    app = make_live_app(redis_url="redis://127.0.0.1:9/0")
    settings, client = settings_of(app), app.test_client()
    body = {"event": "video_complete", "token": login("user-9"), "data": _video_complete()}
    assert client.post(URL, json=body).status_code == 202
    [(_, message)] = read_topic(settings.kafka.topic, 1)
    assert message["user_id"] == "user-9"
    assert message["identity"] == "verified"


def test_readiness_reports_each_service(client) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200, response.json
    assert {name: check["ok"] for name, check in response.json["checks"].items()} == {
        "kafka": True,
        "redis": True,
        "auth_service": True,
    }


def test_readiness_is_503_when_kafka_is_unreachable_without_a_spool(make_live_app) -> None:
    client = make_live_app(kafka_bootstrap="127.0.0.1:9", spool_max_bytes=0).test_client()
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json["checks"]["kafka"]["ok"] is False


class RatingSchema(Schema):
    score = PositiveInteger(required=True)


class RatingPlugin:
    """A test-only plugin: nothing in core/ or etl/ knows about it."""

    @hookimpl
    def register_event_types(self):
        columns = ENVELOPE_COLUMNS_DDL
        ddl = f"CREATE TABLE IF NOT EXISTS {{database}}.{{table}} ({columns}) ENGINE = Log"
        return [EventType("test_rating", RatingSchema, "test_ratings", ddl, example={"score": 7})]


def test_a_test_only_plugin_is_accepted_end_to_end(
    make_live_app, live_settings, read_topic
) -> None:
    manager = make_plugin_manager([RatingPlugin()])
    client = make_live_app(plugin_manager=manager).test_client()
    response = client.post(URL, json={"event": "test_rating", "data": {"score": 9}})
    assert response.status_code == 202
    assert client.post(URL, json={"event": "test_rating", "data": {"score": 0}}).status_code == 422
    [(key, message)] = read_topic(live_settings.kafka.topic, 1)
    assert key == "test_rating"
    assert message["data"] == {"score": 9}
    assert "test_rating" in client.get("/openapi.json").get_data(as_text=True)


def _video_complete() -> dict:
    return {"video_id": f"tt{uuid.uuid4().int % 10**7:07d}", "duration_total": True}
