"""The specification's examples, posted verbatim to the real stack, land with every value.

Real Kafka, Redis, auth service and warehouse: each example of
``tests/conformance/specification.py`` is posted with a null token and with a real
one; the message in Kafka is keyed by the event name, carries ``user_id`` and the
server ``timestamp`` and no token; after one ETL pass its row holds every value sent.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core.host.plugin_manager import build_registry, make_plugin_manager
from etl.runner import run_pass
from tests.conformance.specification import CONTRACT, EXAMPLES, with_token
from tests.etl_helpers import query

pytestmark = pytest.mark.integration

URL = "/api/v1/events"
REGISTRY = build_registry(make_plugin_manager())


def stored_value(value: object) -> object:
    """A column's value as the specification's JSON type (UUID columns come back as UUIDs)."""
    return str(value) if isinstance(value, uuid.UUID) else value


def test_the_specifications_examples_reach_kafka_and_their_tables_unchanged(
    live_client, live_settings, read_topic, login
) -> None:
    token = login("spec-user-1")
    before = datetime.now(UTC) - timedelta(seconds=1)
    sent = {}
    for example in EXAMPLES:
        for tok in (None, token):
            response = live_client.post(URL, json=with_token(example, tok))
            assert response.status_code == 202, (example, response.json)
            sent[response.json["event_id"]] = (example, tok)

    records = read_topic(live_settings.kafka.topic, len(sent))
    assert len(records) == len(sent)
    after = datetime.now(UTC) + timedelta(seconds=1)
    for key, message in records:
        example, tok = sent[message["event_id"]]
        assert key == example["event"]
        assert "token" not in message
        assert message["data"] == example["data"]
        assert message["user_id"] == ("spec-user-1" if tok else "anonymous")
        stamp = datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00"))
        assert before <= stamp <= after

    result = run_pass(live_settings, REGISTRY)
    assert result.messages == len(sent)
    for event_id, (example, tok) in sent.items():
        event = example["event"]
        columns = list(CONTRACT[event])
        [row] = query(
            live_settings,
            f"SELECT event, user_id, {', '.join(columns)} FROM {{db}}.{REGISTRY[event].table} "
            "WHERE event_id = %(id)s",
            id=event_id,
        )
        assert row[0] == event
        assert row[1] == ("spec-user-1" if tok else "anonymous")
        assert {c: stored_value(v) for c, v in zip(columns, row[2:], strict=True)} == example[
            "data"
        ]


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        # {"alg": "none"} . {"sub": "1"} . no signature
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIn0.",
        # {"alg": "HS256"} . {"sub": "1"} . a signature made with another key
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0."
        "c2lnbmVkLXdpdGgtYW5vdGhlci1rZXktMDEyMzQ1Njc4OQ",
    ],
    ids=["garbage", "alg-none", "wrong-signature"],
)
def test_a_malformed_token_on_a_valid_event_is_401(live_client, live_settings, token: str) -> None:
    for example in EXAMPLES:
        response = live_client.post(URL, json=with_token(example, token))
        assert response.status_code == 401, (example["event"], response.json)
        assert response.json["error"] == "invalid_token"
        assert set(response.json["details"]) == {"token"}
