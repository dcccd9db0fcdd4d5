"""The dashboard in headless Chromium, after traffic of every event type went through the real
Kafka and ETL passes: from its file with the network off, and from ``GET /ops/dashboard`` with
the operational token, every chart is drawn with data and nothing is fetched."""

from __future__ import annotations

import time

import pytest

from etl import dashboard
from etl.runner import run_pass
from tests.etl_helpers import produce, visits_of_every_type
from tests.servers import serve

pytestmark = pytest.mark.integration

OPS_TOKEN = "ops-dashboard-3b7c"

#: Per canvas: its title, and how many labels and values its chart holds.
CHARTS = """
return [...document.querySelectorAll('canvas')].map(canvas => {
  const chart = Chart.getChart(canvas);
  return {
    title: canvas.dataset.title,
    labels: chart ? chart.data.labels.length : 0,
    values: chart ? chart.data.datasets.reduce((n, d) => n + d.data.length, 0) : 0,
    drawn: canvas.width > 0 && canvas.height > 0,
  };
});
"""


@pytest.fixture
def page(etl_settings, etl_registry, tmp_path):
    """The dashboard file after every event type was produced and loaded in two passes."""
    messages = visits_of_every_type(etl_registry)
    half = len(messages) // 2
    produce(etl_settings, messages[:half])
    run_pass(etl_settings, etl_registry)
    produce(etl_settings, [*messages[half:], b"not json"])
    run_pass(etl_settings, etl_registry)
    return dashboard.write(etl_settings, etl_registry, tmp_path / "dashboard.html")


def charts_of(browser) -> list[dict]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if browser.execute_script("return window.dashboardReady === true"):
            break
        time.sleep(0.1)
    return browser.execute_script(CHARTS)


def expected_titles(etl_settings, etl_registry) -> set[str]:
    board = dashboard.collect(etl_settings, etl_registry)
    return {chart.title for section in board.sections for chart in section.charts}


def test_the_file_draws_every_chart_with_the_network_off(
    browser, page, etl_settings, etl_registry, tmp_path
) -> None:
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    browser.set_window_size(1400, 1800)
    browser.get(page.as_uri())

    charts = charts_of(browser)
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(r => r.name)"
    )
    browser.save_screenshot(str(tmp_path / "dashboard.png"))

    assert {chart["title"] for chart in charts} == expected_titles(etl_settings, etl_registry)
    assert len(charts) >= 5
    for chart in charts:
        assert chart["labels"] > 0 and chart["values"] > 0 and chart["drawn"], chart
    assert resources == []
    assert browser.execute_script("return document.querySelectorAll('section').length") >= 5


def test_the_ops_endpoint_serves_it_with_the_token(browser, page, make_app) -> None:
    app = make_app(dashboard_file=str(page), ops_open=False, ops_token=OPS_TOKEN)
    with serve(app) as url:
        browser.get(f"{url}/ops/dashboard")
        refused = browser.execute_script("return document.body.innerText")
        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd(
            "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Bearer {OPS_TOKEN}"}}
        )
        browser.get(f"{url}/ops/dashboard")
        charts = charts_of(browser)
        resources = browser.execute_script(
            "return performance.getEntriesByType('resource').map(r => r.name)"
        )

    assert "unauthorized" in refused
    assert charts and all(chart["labels"] and chart["values"] for chart in charts), charts
    assert resources == []
