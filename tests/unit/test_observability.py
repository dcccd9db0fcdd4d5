"""Request ids, request metrics and the access log of every request; ``GET /metrics``
(``core.api.observability``)."""

from __future__ import annotations

import orjson

from core.log import current_request_id
from tests.fakes import sample


def test_the_api_echoes_the_request_id_logs_it_and_puts_it_in_the_message(
    app, client, publisher, log_lines
):
    data = dict(app.extensions["clickstream.pipeline"].registry["element_click"].example)

    answer = client.post(
        "/api/v1/events",
        json={"event": "element_click", "data": data},
        headers={"X-Request-ID": "trace-me-42"},
    )
    fresh = client.post("/api/v1/events", json={"event": "element_click", "data": data})

    assert answer.status_code == 202 and answer.headers["X-Request-ID"] == "trace-me-42"
    assert orjson.loads(publisher.sent[0][1])["request_id"] == "trace-me-42"
    generated = fresh.headers["X-Request-ID"]
    assert orjson.loads(publisher.sent[1][1])["request_id"] == generated != "trace-me-42"
    access = [line for line in log_lines() if line["message"] == "http.request"]
    assert [line["request_id"] for line in access] == ["trace-me-42", generated]
    assert access[0]["status"] == 202 and access[0]["endpoint"] == "/api/v1/events"
    assert current_request_id() is None


def test_the_access_log_can_be_turned_off(make_app, log_lines):
    make_app(access_log=False).test_client().get("/health/live")
    assert not [line for line in log_lines() if line["message"] == "http.request"]


def test_unknown_routes_and_invented_methods_do_not_grow_labels(client):
    client.get("/no/such/path/12345")
    client.open("/api/v1/events", method="BREW")
    text = client.get("/metrics").text
    labels = {"method": "GET", "endpoint": "unmatched", "status": "404"}
    assert sample(text, "clickstream_http_requests_total", **labels) == 1
    assert (
        sample(
            text,
            "clickstream_http_requests_total",
            method="other",
            endpoint="unmatched",
            status="405",
        )
        == 1
    )
    assert "/no/such/path" not in text


def test_the_metrics_endpoint_is_an_operational_endpoint(make_app):
    client = make_app(ops_token="s3cret-ops-token").test_client()
    assert client.get("/metrics").status_code == 401
    answer = client.get("/metrics", headers={"Authorization": "Bearer s3cret-ops-token"})
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain")
