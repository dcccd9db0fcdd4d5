"""docs/clients.md tells the truth: its curl and Python examples are sent to the API and
accepted, every event type is shown each way, its error codes and tracker attributes exist."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from core.api.tracker import bundle
from core.host.plugin_manager import build_registry, make_plugin_manager
from tests.fakes import FakePublisher
from tests.servers import serve

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "clients.md").read_text(encoding="utf-8")
TRACKER = bundle(build_registry(make_plugin_manager()))
NAMES = set(build_registry(make_plugin_manager()).names)
# FakeIdentity's form of a valid token.
TOKEN = "user:42"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", GUIDE, re.DOTALL | re.MULTILINE)


def curl_requests() -> list[tuple[str, str, bytes, dict[str, str]]]:
    """(path, content type, body, other headers) of every curl example sending an event."""
    found = []
    for block in blocks("sh"):
        piped = re.search(r"printf '%s' '([^']*)' \| gzip", block)
        for command in re.split(r'(?=curl -sS "\$API)', block)[1:]:
            path = re.match(r'curl -sS "\$API([^"]+)"', command)[1]
            headers = dict(re.findall(r"-H '([^:]+): ([^']+)'", command))
            inline = re.search(r"-d '([^']*)'", command)
            heredoc = re.search(r"<<EOF\n(.*?)\nEOF", command, re.DOTALL)
            body = (inline or heredoc or piped)[1].replace("$TOKEN", TOKEN).encode()
            if headers.get("Content-Encoding") == "gzip":
                body = gzip.compress(body)
            found.append((path, headers.pop("Content-Type"), body, headers))
    return found


def events_in(body: bytes) -> list[str]:
    payload = orjson.loads(gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body)
    return [item["event"] for item in (payload if isinstance(payload, list) else [payload])]


def test_every_curl_example_is_accepted_and_every_event_type_is_shown(client) -> None:
    singles, batched = set(), set()
    examples = curl_requests()
    assert len(examples) >= 9
    for path, content_type, body, headers in examples:
        answer = client.post(path, data=body, content_type=content_type, headers=headers)
        if path.endswith("/batch"):
            assert answer.status_code == 200, answer.json
            assert answer.json["rejected"] == 0, answer.json
            batched.update(events_in(body))
        else:
            assert answer.status_code == 202, answer.json
            singles.update(events_in(body))
    assert singles == NAMES
    assert batched == NAMES


@pytest.fixture
def api(app, publisher: FakePublisher) -> Iterator[tuple[str, FakePublisher]]:
    with serve(app) as url:
        yield url, publisher


def test_the_python_client_sends_every_event_type_alone_and_in_a_batch(api) -> None:
    url, publisher = api
    client, usage = blocks("python")
    assert 'API = "http://127.0.0.1:8000"' in client
    namespace: dict = {}
    exec(client.replace("http://127.0.0.1:8000", url), namespace)
    exec(usage, namespace)
    sent = [key for key, _ in publisher.sent]
    assert set(sent[:6]) == NAMES and set(sent[6:]) == NAMES and len(sent) == 12
    with pytest.raises(ValueError, match="422"):
        namespace["send"]("element_click", {"element_type": "poster"})


def test_the_javascript_examples_show_every_event_type() -> None:
    tracker, plain = (block for block in blocks("js") if "API" in block or "clickstream." in block)
    # The tracker sends page_view_start and page_view_end itself.
    shown = {name for name in NAMES if f'"{name}"' in tracker}
    assert shown == NAMES - {"page_view_start", "page_view_end"}
    assert {name for name in NAMES if f'"{name}"' in plain} == NAMES


def test_every_error_code_in_the_table_exists() -> None:
    sources = "".join(path.read_text() for path in (ROOT / "core").rglob("*.py"))
    table = re.search(r"^\| status \| `error` .*?\n\n", GUIDE, re.DOTALL | re.MULTILINE)[0]
    codes = set(re.findall(r"`([a-z_]+)`", table)) - {"retry_after", "details", "known_events"}
    werkzeug = {"not_found", "method_not_allowed"}
    assert {code for code in codes - werkzeug if f'"{code}"' not in sources} == set()
    raised = set(re.findall(r'ApiError\(\s*\d+,\s*"([a-z_]+)"', sources))
    # Operational endpoints (metrics, the dashboard) answer operators, not clients.
    operational = {"not_found", "unauthorized", "forbidden", "dashboard_off", "dashboard_not_ready"}
    assert raised - operational <= codes


def test_the_tracker_attributes_in_the_guide_exist() -> None:
    html = "".join(blocks("html")) + "".join(re.findall(r"`data-[a-z-]+`", GUIDE))
    attributes = set(re.findall(r"data-([a-z-]+)", html))
    assert "clickstream-element" in attributes
    for attribute in attributes:
        camel = re.sub(r"-([a-z])", lambda m: m[1].upper(), attribute)
        assert camel in TRACKER, f"data-{attribute} is not read by the tracker"
