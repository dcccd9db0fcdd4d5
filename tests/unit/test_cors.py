"""CORS (``core.api.cors``): off by default, and then answering only the listed origins,
exactly, on the event endpoints only."""

from __future__ import annotations

import orjson
import pytest

from core.host.plugin_manager import build_registry, make_plugin_manager

URL = "/api/v1/events"
EXAMPLE = dict(
    next(t for t in build_registry(make_plugin_manager()) if t.name == "element_click").example
)
CLICK = orjson.dumps({"event": "element_click", "data": EXAMPLE})
SITE = "https://cinema.example"


def preflight(client, origin: str = SITE, url: str = URL):
    return client.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, content-encoding",
        },
    )


def test_cors_is_off_by_default(make_client) -> None:
    client = make_client()
    answer = client.post(URL, data=CLICK, content_type="text/plain", headers={"Origin": SITE})
    assert answer.status_code == 202
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert "Access-Control-Allow-Origin" not in preflight(client).headers


def test_a_beacon_from_an_allowed_origin_gets_cors_headers(make_client) -> None:
    client = make_client(cors_origins=(SITE, "http://localhost:3000"))
    answer = client.post(
        URL, data=CLICK, content_type="text/plain;charset=UTF-8", headers={"Origin": SITE}
    )
    assert answer.status_code == 202
    assert answer.headers["Access-Control-Allow-Origin"] == SITE
    assert "Origin" in answer.headers["Vary"]
    assert "Retry-After" in answer.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in answer.headers


def test_errors_carry_cors_headers_too(make_client) -> None:
    client = make_client(cors_origins=(SITE,))
    answer = client.post(URL, data=b"{", content_type="text/plain", headers={"Origin": SITE})
    assert answer.status_code == 400
    assert answer.headers["Access-Control-Allow-Origin"] == SITE


def test_a_preflight_from_an_allowed_origin_is_answered(make_client) -> None:
    answer = preflight(make_client(cors_origins=(SITE,), cors_max_age_s=120))
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == SITE
    assert answer.headers["Access-Control-Allow-Methods"] == "POST"
    allowed = answer.headers["Access-Control-Allow-Headers"].lower()
    assert "content-type" in allowed and "content-encoding" in allowed
    assert answer.headers["Access-Control-Max-Age"] == "120"


def test_the_batch_endpoint_answers_preflights(make_client) -> None:
    answer = preflight(make_client(cors_origins=(SITE,)), url="/api/v1/events/batch")
    assert answer.headers["Access-Control-Allow-Origin"] == SITE


def test_another_origin_gets_no_cors_headers(make_client) -> None:
    client = make_client(cors_origins=(SITE,))
    for answer in (
        preflight(client, origin="https://evil.example"),
        client.post(URL, data=CLICK, content_type="text/plain", headers={"Origin": SITE + ".evil"}),
    ):
        assert "Access-Control-Allow-Origin" not in answer.headers
        assert "Origin" in answer.headers["Vary"]


@pytest.mark.parametrize(
    "origin",
    [
        "http://cinema.example",  # another scheme
        "https://cinema.example:8443",  # another port
        "https://www.cinema.example",  # a subdomain
        "https://cinema.example.evil.example",  # the allowed origin as a prefix
        "HTTPS://CINEMA.EXAMPLE.evil",
        "null",  # sandboxed iframes and file:// pages
        "",
    ],
)
def test_an_origin_is_allowed_only_when_listed_exactly(make_client, origin: str) -> None:
    client = make_client(cors_origins=(SITE, "http://localhost:3000"))
    beacon = client.post(URL, data=CLICK, content_type="text/plain", headers={"Origin": origin})
    assert beacon.status_code == 202  # CORS is the browser's business; the event still counts
    for answer in (beacon, preflight(client, origin=origin)):
        assert "Access-Control-Allow-Origin" not in answer.headers
        assert "Access-Control-Allow-Methods" not in answer.headers
    listed = preflight(client, origin="http://localhost:3000")
    assert listed.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"


def test_any_origin_with_a_star(make_client) -> None:
    answer = preflight(make_client(cors_origins=("*",)), origin="https://anyone.example")
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_only_the_event_endpoints_get_cors_headers(make_client) -> None:
    client = make_client(cors_origins=("*",))
    for path in ("/health/live", "/openapi.json", "/ops-probe"):
        assert (
            "Access-Control-Allow-Origin" not in client.get(path, headers={"Origin": SITE}).headers
        )
