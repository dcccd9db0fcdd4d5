"""Availability from the API's request counters: parsing a real exposition, increases across
server restarts, the error budget, scraping a real HTTP server, the warehouse rows, the
dashboard's section and the ETL's metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest

from core.api.metrics import ApiMetrics
from core.config import Settings
from core.host.plugin_manager import build_registry, make_plugin_manager
from etl import availability, dashboard, ledger
from etl.availability import Availability, Scrape
from etl.metrics import EtlMetrics
from etl.warehouse import Warehouse
from tests.servers import serve

REGISTRY = build_registry(make_plugin_manager())
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def exposition(answers: dict[tuple[str, int], int]) -> str:
    metrics = ApiMetrics()
    for (endpoint, status), count in answers.items():
        for _ in range(count):
            metrics.request_done("POST", endpoint, status, 0.001)
    return generate_latest(metrics.registry).decode()


def test_totals_count_client_requests_and_their_server_errors() -> None:
    text = exposition(
        {
            ("/api/v1/events", 202): 5,
            ("/api/v1/events", 400): 2,
            ("/api/v1/events", 503): 1,
            ("/api/v1/events/batch", 500): 1,
            ("/health/ready", 503): 4,
            ("/metrics", 200): 3,
        }
    )
    assert availability.totals(text) == (9, 2)


def test_increases_survive_a_restart_of_the_server_and_skip_unreachable_scrapes() -> None:
    scrapes = [
        Scrape(at(0), "a", True, 100, 1),
        Scrape(at(60), "a", True, 150, 1),
        Scrape(at(120), "a", False),
        Scrape(at(180), "a", True, 40, 2),  # restarted: 40 new requests, 2 new errors
        Scrape(at(240), "a", True, 100, 2),
    ]
    assert availability.increases(scrapes) == [(at(60), 50, 0), (at(180), 40, 2), (at(240), 60, 0)]
    figures = availability.compute(scrapes, 0.99)
    assert (figures.requests, figures.server_errors) == (150, 2)
    assert (figures.scrapes, figures.unreachable) == (5, 1)
    assert figures.ratio == pytest.approx(1 - 2 / 150)
    assert figures.budget_remaining == pytest.approx(1 - 2 / 1.5)


def test_sources_are_counted_apart() -> None:
    scrapes = [
        Scrape(at(0), "a", True, 10, 0),
        Scrape(at(1), "b", True, 1000, 0),
        Scrape(at(60), "a", True, 20, 1),
        Scrape(at(61), "b", True, 1010, 0),
    ]
    assert availability.compute(scrapes, 0.999).requests == 20


def test_the_budget_of_no_request_is_whole() -> None:
    figures = Availability(requests=0, server_errors=0, objective=0.999, scrapes=1, unreachable=0)
    assert figures.ratio is None
    assert figures.budget_remaining == 1.0
    spent = Availability(requests=1000, server_errors=1, objective=0.999, scrapes=2, unreachable=0)
    assert spent.budget_remaining == pytest.approx(0.0)


def test_the_url_scraped_follows_the_api_settings() -> None:
    assert availability.metrics_url(Settings()) == "http://127.0.0.1:8000/metrics"
    exposed = Settings.of(api_host="0.0.0.0", api_port=9000)
    assert availability.metrics_url(exposed) == "http://127.0.0.1:9000/metrics"
    ops = Settings.of(api_server="gunicorn", ops_port=9100)
    assert availability.metrics_url(ops) == "http://127.0.0.1:9100/metrics"
    assert availability.metrics_url(Settings.of(availability_metrics_url="off")) is None


def test_a_scrape_reads_a_real_server_and_an_unreachable_one_is_recorded() -> None:
    text = exposition({("/api/v1/events", 202): 3, ("/api/v1/events", 500): 1}).encode()
    seen = []

    def app(environ, start_response):
        seen.append(environ.get("HTTP_AUTHORIZATION"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [text]

    with serve(app) as url:
        scraped = availability.scrape(f"{url}/metrics", token="secret")
    assert (scraped.reachable, scraped.requests, scraped.server_errors) == (True, 4, 1)
    assert seen == ["Bearer secret"]
    gone = availability.scrape(f"{url}/metrics", timeout_s=1)
    assert not gone.reachable and gone.requests == 0


def test_scrapes_are_kept_in_the_warehouse_and_drawn_on_the_dashboard(settings) -> None:
    warehouse = Warehouse.from_settings(settings)
    now = datetime.now(UTC).replace(microsecond=0)
    with warehouse.session() as client:
        warehouse.ensure_schema(client, REGISTRY, ledger.TABLES)
        for seconds, up, requests, errors in (
            (-7200, True, 0, 0),
            (-120, True, 500, 0),
            (-60, False, 0, 0),
            (0, True, 2000, 3),
        ):
            availability.record(
                client,
                warehouse,
                Scrape(now + timedelta(seconds=seconds), "api", up, requests, errors),
            )
        recent = availability.load(client, warehouse, 3600)
    assert [(s.reachable, s.requests) for s in recent] == [(True, 500), (False, 0), (True, 2000)]
    section = dashboard._availability(recent, settings.replace(availability_window_s=3600))
    tiles = {tile.label: tile.value for tile in section.tiles}
    assert tiles["availability"] == "99.8 %"
    assert tiles["objective"] == "99.9 %"
    assert tiles["error budget left"] == "-100 %"
    assert tiles["API unreachable"] == "1 of 3 scrapes"
    assert section.charts[0].series["availability"] == [99.8]


def test_no_scrape_yet_says_so() -> None:
    section = dashboard._availability([], Settings())
    assert section.missing and not section.tiles


def test_the_etl_exports_the_figures() -> None:
    metrics = EtlMetrics(Settings.of(availability_objective=0.99), REGISTRY)
    metrics.set_availability(
        Availability(requests=1000, server_errors=5, objective=0.99, scrapes=3, unreachable=0)
    )
    text = generate_latest(metrics.registry).decode()
    assert "clickstream_availability_ratio 0.995" in text
    assert "clickstream_availability_objective_ratio 0.99" in text
    assert "clickstream_availability_error_budget_remaining_ratio 0.5" in text
    assert 'clickstream_availability_window_requests{answer="server_error"} 5.0' in text


def test_scrapes_happen_after_passes_at_most_every_interval(monkeypatch) -> None:
    scraped, reported, now = [], [], [0.0]
    monkeypatch.setattr(
        availability, "_scrape_and_report", lambda settings, url, report: scraped.append(url)
    )
    run = availability.after_passes(
        Settings(), lambda s, r: "result", reported.append, clock=lambda: now[0]
    )
    for moment in (0, 10, availability.SCRAPE_INTERVAL_S + 1):
        now[0] = moment
        assert run(Settings(), None) == "result"
    assert scraped == ["http://127.0.0.1:8000/metrics"] * 2
    off = Settings.of(availability_metrics_url="off")
    passes = lambda s, r: "result"  # noqa: E731
    assert availability.after_passes(off, passes, reported.append) is passes
