"""docs/writing-plugins.md's requests tell the truth: each curl example is sent to the API
with the example plugin installed (identity and Kafka faked) and answered as its comment
says, the batch body included; the answer once the plugin is removed is the real one."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from core.api import create_app
from core.config import Settings
from core.host.plugin_manager import make_plugin_manager
from tests.fakes import FakeIdentity, FakePublisher

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "writing-plugins.md").read_text(encoding="utf-8")
EXAMPLE = ROOT / "examples" / "plugin-rating"
#: A curl example: its path, content type and body, then the comment with the answer.
CURL = re.compile(
    r"^curl -s localhost:8000(/api/v1/events(?:/batch)?) -H 'Content-Type: ([^']+)' "
    r"-d '(.*?)'\n# (\d{3}) ([^\n]*)$",
    re.MULTILINE | re.DOTALL,
)
#: What a comment claims: "key": a number or a string ("…" stands for any), or a list.
CLAIM = re.compile(r'"([\w.]+)": (\d+|"[^"]*"|\[)')


def claims(comment: str) -> list[tuple[str, Any]]:
    return [
        (key, ... if raw in ("[", '"…"') else orjson.loads(raw))
        for key, raw in CLAIM.findall(comment)
    ]


def holds(answer: Any, key: str, value: Any) -> bool:
    """Whether ``key`` is somewhere in ``answer`` (with ``value``, unless it is ``...``)."""
    if isinstance(answer, dict):
        if key in answer and (value is ... or answer[key] == value):
            return True
        return any(holds(item, key, value) for item in answer.values())
    if isinstance(answer, list):
        return any(holds(item, key, value) for item in answer)
    return False


def api(*plugins: object):
    manager = make_plugin_manager(extra_plugins=plugins)
    app = create_app(Settings(), manager, identity=FakeIdentity(), publisher=FakePublisher())
    return app.test_client()


@pytest.fixture
def rating_plugin(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    return importlib.import_module("clickstream_rating")


def test_every_curl_example_is_answered_as_the_guide_says(rating_plugin) -> None:
    client = api(rating_plugin)
    examples = CURL.findall(GUIDE)
    assert {path for path, *_ in examples} == {"/api/v1/events", "/api/v1/events/batch"}
    for path, content_type, body, status, comment in examples:
        answer = client.post(path, data=body.encode(), content_type=content_type)
        assert answer.status_code == int(status), (body, answer.json)
        assert claims(comment), comment
        for key, value in claims(comment):
            assert holds(answer.json, key, value), (key, value, answer.json)


def test_the_batch_body_is_an_array_and_an_object_is_refused_as_the_guide_says(
    rating_plugin,
) -> None:
    [batch] = [body for path, _, body, *_ in CURL.findall(GUIDE) if path.endswith("/batch")]
    events = orjson.loads(batch)
    assert isinstance(events, list) and len(events) == 2
    assert '(`{"events": [...]}` is refused: `400`, `invalid_body`)' in " ".join(GUIDE.split())

    answer = api(rating_plugin).post("/api/v1/events/batch", json={"events": events})

    assert (answer.status_code, answer.json["error"]) == (400, "invalid_body")


def test_the_batch_limits_in_the_guide_are_the_defaults() -> None:
    text = " ".join(GUIDE.split())
    limits = Settings().api
    assert f"`CLICKSTREAM_MAX_BATCH_EVENTS` events ({limits.max_batch_events})" in text
    assert limits.max_batch_bytes == 1024 * 1024
    assert "`CLICKSTREAM_MAX_BATCH_BYTES` (1 MiB), `413` above" in text
    assert api().post("/api/v1/events/batch", json=[]).json["error"] == "empty_batch"


def test_a_removed_plugins_event_is_answered_as_the_guide_says() -> None:
    [comment] = re.findall(r'^422 (\{"error": "unknown_event".*)$', GUIDE, re.MULTILINE)
    client = api()
    for answer in (
        client.post("/api/v1/events", json={"event": "rating_submitted", "data": {}}),
        client.post("/api/v1/events/batch", json=[{"event": "rating_submitted", "data": {}}]),
    ):
        assert answer.status_code in (422, 200)
        result = answer.json if answer.status_code == 422 else answer.json["results"][0]
        assert result.get("status", 422) == 422
        for key, value in claims(comment):
            assert holds(result, key, value), (key, value, result)
