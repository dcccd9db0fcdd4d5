"""The API's metrics (``core.api.metrics``): what is counted, with which labels, and what a
scrape shows."""

from __future__ import annotations

from core.api.metrics import ApiMetrics
from tests.fakes import FakeIdentity, FakePublisher, sample


def example(app, name: str) -> dict:
    return dict(app.extensions["clickstream.pipeline"].registry[name].example)


def test_requests_and_events_are_counted_by_status_route_and_type(app, client, publisher):
    click = {"event": "element_click", "data": example(app, "element_click")}
    assert client.post("/api/v1/events", json=click).status_code == 202
    assert client.post("/api/v1/events", json={**click, "token": "bad"}).status_code == 401
    assert client.post("/api/v1/events", json={"event": "nope", "data": {}}).status_code == 422
    batch = [click, {"event": "nope", "data": {}}, 7, {"event": ["x"], "data": {}}]
    assert client.post("/api/v1/events/batch", json=batch).status_code == 200
    publisher.failing = True
    assert client.post("/api/v1/events", json=click).status_code == 503

    text = client.get("/metrics").text

    assert sample(text, "clickstream_events_total", event="element_click", status="202") == 2
    assert sample(text, "clickstream_events_total", event="element_click", status="401") == 1
    assert sample(text, "clickstream_events_total", event="element_click", status="503") == 1
    assert sample(text, "clickstream_events_total", event="unknown", status="422") == 3
    assert sample(text, "clickstream_events_total", event="unknown", status="400") == 1
    route = "/api/v1/events"
    for status, count in (("202", 1), ("401", 1), ("422", 1), ("503", 1)):
        labels = {"method": "POST", "endpoint": route, "status": status}
        assert sample(text, "clickstream_http_requests_total", **labels) == count
    assert (
        sample(
            text,
            "clickstream_http_requests_total",
            method="POST",
            endpoint="/api/v1/events/batch",
            status="200",
        )
        == 1
    )
    assert sample(text, "clickstream_http_request_duration_seconds_count", endpoint=route) == 4
    # Two single events and one batch reached the publisher.
    assert sample(text, "clickstream_kafka_publish_duration_seconds_count") == 3


class StatsIdentity(FakeIdentity):
    def __init__(self) -> None:
        self.counts = {"verified": 0, "cache_hits_local": 0, "fallbacks": 0}
        self.breaker = type("Breaker", (), {"state": "closed"})()

    def stats(self) -> dict[str, int]:
        return dict(self.counts)


class StatsPublisher(FakePublisher):
    def __init__(self) -> None:
        super().__init__()
        self.counts = {"published": 0, "spool_depth_events": 0, "spool_bytes": 0}

    def stats(self) -> dict[str, int]:
        return dict(self.counts)


def test_resolver_and_publisher_counters_are_mirrored_at_scrape_time():
    metrics = ApiMetrics()
    identity, publisher = StatsIdentity(), StatsPublisher()
    metrics.watch(identity, publisher)
    identity.counts.update(verified=5, cache_hits_local=4, fallbacks=1)
    publisher.counts.update(published=7, spool_depth_events=3, spool_bytes=300)
    identity.breaker.state = "open"
    first = metrics.render()[0].decode()
    identity.counts.update(verified=6)
    publisher.counts.update(published=9, spool_depth_events=0, spool_bytes=0)
    identity.breaker.state = "closed"
    second = metrics.render()[0].decode()

    assert sample(first, "clickstream_identity_resolutions_total", mode="verified") == 5
    assert sample(first, "clickstream_identity_cache_lookups_total", result="hit_local") == 4
    assert sample(first, "clickstream_auth_fallbacks_total") == 1
    assert sample(first, "clickstream_kafka_published_total") == 7
    assert sample(first, "clickstream_spool_depth_events") == 3
    assert sample(first, "clickstream_spool_bytes") == 300
    assert sample(first, "clickstream_auth_breaker_open") == 1
    assert sample(second, "clickstream_identity_resolutions_total", mode="verified") == 6
    assert sample(second, "clickstream_kafka_published_total") == 9
    assert sample(second, "clickstream_spool_depth_events") == 0
    assert sample(second, "clickstream_auth_breaker_open") == 0


def test_stand_ins_without_stats_are_simply_not_mirrored():
    metrics = ApiMetrics()
    metrics.watch(FakeIdentity(), FakePublisher())
    text = metrics.render()[0].decode()
    assert sample(text, "clickstream_kafka_published_total") == 0
