"""Property-based tests: whatever a client sends, the API answers a 4xx in the documented shape
or accepts an event the ETL can store, never a 500.

Values are arbitrary JSON: every field of the envelope and of every plugin's schema, whole
bodies, batches and raw bytes. Identity and Kafka are faked, so each example costs a Flask
test request; example counts stay small for a shared 2-core machine.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import Settings
from core.host.plugin_manager import build_registry, make_plugin_manager
from tests.fakes import FakePublisher

URL = "/api/v1/events"
BATCH = "/api/v1/events/batch"
REGISTRY = build_registry(make_plugin_manager())
EVENT_TYPES = {event_type.name: event_type for event_type in REGISTRY}
#: Every (event, field) pair of every plugin's schema.
FIELDS = sorted(
    (name, field) for name, event in EVENT_TYPES.items() for field in event.schema().fields
)
EVENT_STATUSES = {202, 400, 401, 413, 415, 422}
PROPERTY_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["", " ", "user:7", "7", "true", "0", "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
tokens = st.none() | st.just("user:42") | json_values


def encode(value: Any) -> bytes:
    """JSON bytes; the standard library writes integers of any size, as clients may."""
    return json.dumps(value, ensure_ascii=False).encode()


@pytest.fixture
def app_settings() -> Settings:
    return Settings.of(max_body_bytes=8192, max_batch_bytes=65536, max_batch_events=20)


def assert_error_shape(body: Any) -> None:
    assert isinstance(body, dict), body
    assert isinstance(body["error"], str) and isinstance(body["message"], str), body
    assert isinstance(body["details"], dict), body
    for field, messages in body["details"].items():
        assert isinstance(field, str), body
        assert isinstance(messages, list) and messages, body
        assert all(isinstance(text, str) for text in messages), body


def check_event_answer(response, publisher: FakePublisher) -> None:
    """202 with a stored, ETL-mappable message, or an allowed error in the documented shape."""
    assert response.status_code in EVENT_STATUSES, (response.status_code, response.data)
    if response.status_code == 202:
        key, value = publisher.sent[-1]
        message = orjson.loads(value)
        assert message["event_id"] == response.json["event_id"]
        EVENT_TYPES[key].row(message)
    else:
        assert_error_shape(response.json)


def post(client, body: bytes, url: str = URL, content_type: str = "application/json"):
    return client.post(url, data=body, content_type=content_type)


@PROPERTY_SETTINGS
@given(target=st.sampled_from(FIELDS), value=json_values, drop=st.booleans())
def test_any_value_in_any_plugin_field(client, publisher, target, value, drop) -> None:
    name, field = target
    data = dict(EVENT_TYPES[name].example)
    if drop:
        data.pop(field, None)
    else:
        data[field] = value
    response = post(client, encode({"event": name, "token": None, "data": data}))
    check_event_answer(response, publisher)


@PROPERTY_SETTINGS
@given(
    event=st.sampled_from(sorted(EVENT_TYPES)) | json_values,
    token=tokens,
    data=st.dictionaries(st.text(max_size=12), json_values, max_size=6) | json_values,
    extra=st.dictionaries(st.text(max_size=8), json_values, max_size=2),
)
def test_any_envelope(client, publisher, event, token, data, extra) -> None:
    body = {**extra, "event": event, "token": token, "data": data}
    check_event_answer(post(client, encode(body)), publisher)


@PROPERTY_SETTINGS
@given(value=json_values)
def test_any_json_body(client, publisher, value) -> None:
    check_event_answer(post(client, encode(value)), publisher)


@PROPERTY_SETTINGS
@given(
    raw=st.binary(max_size=200),
    content_type=st.sampled_from(["application/json", "text/plain", "application/xml", ""])
    | st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=30),
)
def test_any_bytes_with_any_content_type(client, publisher, raw, content_type) -> None:
    response = client.post(URL, data=raw, headers={"Content-Type": content_type})
    check_event_answer(response, publisher)


@PROPERTY_SETTINGS
@given(
    events=st.lists(
        st.builds(
            lambda name, token, data: {"event": name, "token": token, "data": data},
            st.sampled_from(sorted(EVENT_TYPES)),
            tokens,
            st.sampled_from(sorted(EVENT_TYPES)).map(lambda n: dict(EVENT_TYPES[n].example))
            | json_values,
        )
        | json_values,
        max_size=25,
    )
    | json_values
)
def test_any_batch(client, publisher, events) -> None:
    response = post(client, encode(events), BATCH)
    assert response.status_code in {200, 400, 413, 415, 422}, (response.status_code, response.data)
    if response.status_code != 200:
        assert_error_shape(response.json)
        return
    results = response.json["results"]
    assert len(results) == len(events)
    assert response.json["accepted"] + response.json["rejected"] == len(events)
    for result in results:
        assert result["status"] in EVENT_STATUSES - {413, 415}, result
        if result["status"] != 202:
            assert_error_shape({k: v for k, v in result.items() if k != "status"})
