"""The built-in event types accept the specification's shapes, and refuse what breaks them.

Unit level (Kafka and the auth service faked): every example of
``tests/conformance/specification.py`` is accepted and published as sent; each of the
specification's fields, missing, null or of the wrong type, gets a 422 naming it.
"""

from __future__ import annotations

import uuid

import orjson
import pytest
from marshmallow import fields

from core.host.plugin_manager import build_registry, make_plugin_manager
from tests.conformance.specification import CONTRACT, EXAMPLES, WRONG_TYPE, with_token

URL = "/api/v1/events"
REGISTRY = build_registry(make_plugin_manager())
BY_EVENT = {example["event"]: example for example in EXAMPLES}
FIELDS = [(event, name, kind) for event, shape in CONTRACT.items() for name, kind in shape.items()]


def test_every_event_of_the_specification_has_a_plugin() -> None:
    assert set(CONTRACT) <= set(REGISTRY.names)
    assert set(BY_EVENT) == set(CONTRACT)


@pytest.mark.parametrize("event", sorted(CONTRACT))
def test_the_required_fields_are_exactly_the_specifications(event: str) -> None:
    declared = REGISTRY.schema(event).fields
    required = {name for name, field in declared.items() if field.required}
    assert required == set(CONTRACT[event]), (
        f"{event}: the schema requires {sorted(required)}, the specification "
        f"{sorted(CONTRACT[event])}; fields beyond the specification must be optional"
    )


@pytest.mark.parametrize(("event", "name", "kind"), FIELDS)
def test_each_field_has_the_specifications_type(event: str, name: str, kind: type) -> None:
    field = REGISTRY.schema(event).fields[name]
    expected = {
        str: fields.String,
        int: fields.Integer,
        bool: fields.Boolean,
        uuid.UUID: fields.UUID,
    }[kind]
    assert isinstance(field, expected), f"{event}.data.{name} is a {type(field).__name__}"


@pytest.mark.parametrize("token", [None, "user:42"], ids=["anonymous", "logged-in"])
@pytest.mark.parametrize("example", EXAMPLES, ids=[e["event"] for e in EXAMPLES])
def test_the_specifications_example_is_accepted_and_published_as_sent(
    client, publisher, example: dict, token: str | None
) -> None:
    response = client.post(URL, json=with_token(example, token))
    assert response.status_code == 202, response.json
    [(key, value)] = publisher.sent
    message = orjson.loads(value)
    assert key == example["event"]
    assert message["data"] == example["data"]
    assert "token" not in message
    assert message["user_id"] == ("42" if token else "anonymous")


@pytest.mark.parametrize("problem", ["missing", "null", "wrong type"])
@pytest.mark.parametrize(("event", "name", "kind"), FIELDS)
def test_a_broken_field_is_422_naming_it(
    client, publisher, event: str, name: str, kind: type, problem: str
) -> None:
    body = with_token(BY_EVENT[event], None)
    if problem == "missing":
        del body["data"][name]
    else:
        body["data"][name] = None if problem == "null" else WRONG_TYPE[kind]
    response = client.post(URL, json=body)
    assert response.status_code == 422, response.json
    assert response.json["error"] == "validation_error"
    assert set(response.json["details"]) == {f"data.{name}"}
    assert publisher.sent == []


TEXT_FIELDS = [(event, name) for event, name, kind in FIELDS if kind is str]


@pytest.mark.parametrize(("event", "name"), TEXT_FIELDS)
def test_an_oversized_text_field_is_422(client, event: str, name: str) -> None:
    body = with_token(BY_EVENT[event], None)
    body["data"][name] = "x" * 4096
    response = client.post(URL, json=body)
    assert response.status_code == 422, response.json
    assert set(response.json["details"]) == {f"data.{name}"}


#: A search may be by text alone or by filters alone, so either of its two may be empty.
NEED_A_VALUE = [(event, name) for event, name in TEXT_FIELDS if event != "search_filter"]


@pytest.mark.parametrize(("event", "name"), NEED_A_VALUE)
def test_an_empty_text_field_is_422(client, event: str, name: str) -> None:
    body = with_token(BY_EVENT[event], None)
    body["data"][name] = ""
    response = client.post(URL, json=body)
    assert response.status_code == 422, response.json
    assert set(response.json["details"]) == {f"data.{name}"}


def test_an_unchanged_quality_is_data_not_an_error(client, publisher) -> None:
    body = with_token(BY_EVENT["quality_change"], None)
    body["data"]["new_quality"] = body["data"]["old_quality"]
    assert client.post(URL, json=body).status_code == 202
    assert len(publisher.sent) == 1


def test_a_search_by_filters_alone_or_by_text_alone_is_accepted(client, publisher) -> None:
    for data in (
        {"search_query": "", "filters": "genre=драма"},
        {"search_query": "Брат", "filters": ""},
    ):
        body = {"event": "search_filter", "token": None, "data": data}
        assert client.post(URL, json=body).status_code == 202, data
    assert len(publisher.sent) == 2


def test_a_search_with_neither_text_nor_filters_is_422(client, publisher) -> None:
    body = {"event": "search_filter", "token": None, "data": {"search_query": " ", "filters": ""}}
    response = client.post(URL, json=body)
    assert response.status_code == 422
    assert set(response.json["details"]) == {"data.search_query"}
    assert publisher.sent == []
