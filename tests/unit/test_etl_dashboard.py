"""The dashboard's figures (``etl.dashboard``) on the real engine (chDB): after traffic of every
event type, every section that has its source has charts with data, what has no source yet
says so, the page is one file that names no other, and the ETL rewrites it after passes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.host.plugin_manager import build_registry, make_plugin_manager
from etl import dashboard
from etl.cli import main
from etl.runner import run_pass
from tests.etl_helpers import batch_of, visits_of_every_type

REGISTRY = build_registry(make_plugin_manager())


@pytest.fixture
def loaded(settings, etl_kafka):
    etl_kafka.batches = [
        batch_of(settings.kafka.topic, [*visits_of_every_type(REGISTRY), b"not json"])
    ]
    run_pass(settings, REGISTRY)
    return settings


@pytest.fixture
def board(loaded) -> dashboard.Dashboard:
    return dashboard.collect(loaded, REGISTRY)


def sections(board: dashboard.Dashboard) -> dict[str, dashboard.Section]:
    return {section.title: section for section in board.sections}


def test_every_chart_drawn_has_data(board) -> None:
    charts = [chart for section in board.sections for chart in section.charts]

    assert charts
    for chart in charts:
        assert chart.labels, chart.title
        assert chart.series and all(len(v) == len(chart.labels) for v in chart.series.values())


def test_events_per_type_over_time_count_every_event_type(board) -> None:
    [chart] = sections(board)["Events"].charts

    assert set(chart.series) == set(REGISTRY.names)
    assert all(sum(values) == 6 for values in chart.series.values())


def test_every_plugin_report_has_its_section(board) -> None:
    found = sections(board)
    for name in REGISTRY.reports:
        section = found[f"Report {name}"]
        assert section.charts and not section.missing


def test_active_users_are_counted_per_day_without_the_anonymous_placeholder(board) -> None:
    section = sections(board)["Active users (DAU / MAU)"]
    [chart] = section.charts

    # users 0, 1 and 2, and the logged-out browser-3: not the "anonymous" placeholder
    assert chart.series == {"active users": [4.0]}


def test_the_quality_section_counts_the_dead_letter(board) -> None:
    section = sections(board)["Data quality"]
    tiles = {tile.label: tile.value for tile in section.tiles}

    assert tiles["dead letters waiting"] == "1"
    assert section.charts[0].series["count"][section.charts[0].labels.index("dead letters waiting")]


def test_visits_and_active_users_come_from_the_sessions_view_and_the_audience_report(
    board,
) -> None:
    found = sections(board)
    visits = found["Sessions"]
    assert visits.charts and all(chart.labels for chart in visits.charts)
    tiles = {tile.label: tile.value for tile in found["Active users (DAU / MAU)"].tiles}
    assert {"dau", "mau"} <= set(tiles)


def test_an_empty_warehouse_gives_a_page_that_says_so(settings) -> None:
    board = dashboard.collect(settings, REGISTRY)

    assert sections(board)["Events"].missing
    assert "<canvas" not in dashboard.render(board)  # canvases are made by the script


def test_the_page_is_one_file_that_loads_nothing(board) -> None:
    page = dashboard.render(board)

    assert "Chart.js v4.6.1" in page
    assert not re.search(r"""<(?:script|link|img)[^>]+(?:src|href)=""", page)
    assert page.count("</script>") == 3


def test_clickstream_dashboard_writes_the_page(loaded, monkeypatch, tmp_path, capsys) -> None:
    for variable, value in loaded.to_env().items():
        monkeypatch.setenv(variable, value)
    out = tmp_path / "board" / "dashboard.html"

    assert main(["dashboard", "--out", str(out)]) == 0

    assert str(out) in capsys.readouterr().out
    assert 'id="dashboard-data"' in out.read_text(encoding="utf-8")


def test_the_etl_rewrites_the_dashboard_at_most_every_interval(loaded, tmp_path) -> None:
    target = tmp_path / "dashboard.html"
    settings = loaded.replace(dashboard_file=str(target), dashboard_interval_s=60)
    now = [0.0]
    passes = []
    run = dashboard.after_passes(
        settings, REGISTRY, lambda s, r: passes.append(1) or "result", clock=lambda: now[0]
    )

    assert run(settings, REGISTRY) == "result"
    first = target.stat().st_mtime_ns
    target.write_text("old")
    now[0] = 30
    run(settings, REGISTRY)
    assert target.read_text() == "old"
    now[0] = 61
    run(settings, REGISTRY)
    assert target.read_text() != "old" and first
    assert len(passes) == 3


def test_a_dashboard_that_cannot_be_written_does_not_fail_the_pass(loaded, caplog) -> None:
    settings = loaded.replace(dashboard_file="/proc/no/such/dashboard.html")
    run = dashboard.after_passes(settings, REGISTRY, lambda s, r: "result")

    assert run(settings, REGISTRY) == "result"
    assert "etl.dashboard_failed" in caplog.text


def test_without_a_file_the_etl_writes_none(settings) -> None:
    def pass_function(s, r):
        return "result"

    assert dashboard.after_passes(settings, REGISTRY, pass_function) is pass_function


def test_the_library_is_vendored_with_its_license() -> None:
    assets = Path(dashboard.__file__).parent / "assets"

    assert (assets / dashboard.CHART_JS).read_text(encoding="utf-8").startswith("/*!\n * Chart.js")
    assert "MIT License" in (assets / "chart.js-LICENSE.md").read_text(encoding="utf-8")
