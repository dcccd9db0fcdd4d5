"""Reports (``etl.reports``) on the real ClickHouse engine (chDB, in-process): a plugin's
report, its rows and figures, before and after its view exists (the built-in reports on the
real broker: test_etl_reports_live.py)."""

from __future__ import annotations

from etl.reports import format_report, plugin_report, quality_report
from tests.etl_helpers import LONG_NOTES, ensure_notes, notes_registry


def test_a_plugin_report_prints_its_rows_and_figures(settings) -> None:
    registry = notes_registry(LONG_NOTES)
    before = plugin_report(settings, registry, "notes")
    assert not before.available
    assert format_report(before) == "notes: nothing to report yet (long_notes missing)"
    ensure_notes(settings, registry)
    report = plugin_report(settings, registry, "notes")
    assert (report.columns, report.rows, report.figures) == (
        ["text", "length"],
        [("abcd", 4), ("abcdefgh", 8)],
        {"long": 2},
    )
    assert format_report(report).splitlines() == [
        "text      length",
        "abcd           4",
        "abcdefgh       8",
        "long: 2",
    ]
    assert quality_report(settings, registry, with_lag=False).figures == {"notes": {"long": 2}}
