"""docs/api.html: the OpenAPI document as an offline HTML page, up to date, also at GET /docs."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from core.api import create_app
from core.api_docs import render_html
from core.config import Settings
from core.openapi import build_spec
from core.plugin_manager import build_registry, make_plugin_manager
from tests.fakes import FakeIdentity, FakePublisher

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "api.html"
REGISTRY = build_registry(make_plugin_manager())


class _Links(HTMLParser):
    """Every id, in-page link and external resource of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.fragments: set[str] = set()
        self.resources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"])
        href = values.get("href") or ""
        if href.startswith("#"):
            self.fragments.add(href[1:])
        elif href or values.get("src") or tag in ("script", "link", "img", "iframe"):
            self.resources.append(f"<{tag}> {href or values.get('src')}")


def test_the_committed_page_is_not_stale() -> None:
    assert PUBLISHED.read_text(encoding="utf-8") == render_html(build_spec(REGISTRY)), (
        "docs/api.html is stale: run `make docs`"
    )


def test_the_page_works_offline_and_its_links_resolve() -> None:
    page = _Links()
    page.feed(PUBLISHED.read_text(encoding="utf-8"))
    assert page.resources == []
    assert page.fragments <= page.ids, page.fragments - page.ids
    spec = build_spec(REGISTRY)
    assert {f"schema-{name}" for name in spec["components"]["schemas"]} <= page.ids


def test_every_event_type_field_and_status_is_on_the_page() -> None:
    html = render_html(build_spec(REGISTRY))
    for event_type in REGISTRY:
        assert f"<code>{event_type.name}</code>" in html
        for field in event_type.schema().fields:
            assert f"<code>{field}</code>" in html
    statuses = set(re.findall(r"<tr><td>(\d{3})</td>", html))
    assert {"200", "202", "400", "401", "413", "415", "422", "429", "503"} <= statuses


def test_the_api_serves_the_page_of_its_own_plugins() -> None:
    app = create_app(Settings(), identity=FakeIdentity(), publisher=FakePublisher())
    answer = app.test_client().get("/docs")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert answer.get_data(as_text=True) == PUBLISHED.read_text(encoding="utf-8")
