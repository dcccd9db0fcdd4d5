"""The ``clickstream`` console script (``etl.cli``): its subcommands and what they print."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.api.openapi import build_spec
from core.host.plugin_manager import build_registry, make_plugin_manager
from etl.cli import main, parser
from etl.warehouse import Warehouse, render
from tests.etl_helpers import LONG_NOTES, notes_registry


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["etl"], {"command": "etl", "once": False}),
        (["etl", "--once"], {"command": "etl", "once": True}),
        (["deadletters"], {"action": "list", "all": False}),
        (["deadletters", "requeue", "--reason", "unknown_event"], {"reason": "unknown_event"}),
        (["deadletters", "requeue", "--id", "a", "--id", "b"], {"id": ["a", "b"]}),
        (["report", "quality"], {"which": "quality"}),
        (["ddl"], {"command": "ddl", "events": []}),
        (["ddl", "page_view_end", "search_filter"], {"events": ["page_view_end", "search_filter"]}),
    ],
)
def test_the_cli_parses_its_subcommands(argv, expected):
    args = vars(parser().parse_args(argv))

    assert {key: args[key] for key in expected} == expected


def test_the_cli_refuses_an_unknown_report():
    with pytest.raises(SystemExit):
        parser().parse_args(["report", "everything"])


@pytest.mark.parametrize("name", ["counts", "quality", "notes"])
def test_the_cli_offers_built_in_and_plugin_reports(monkeypatch, name) -> None:
    import etl.cli

    monkeypatch.setattr(etl.cli, "_registry", lambda: notes_registry(LONG_NOTES))
    assert etl.cli.parser().parse_args(["report", name]).which == name


def test_clickstream_schema_check_exits_non_zero_on_a_breaking_change(
    tmp_path: Path, capsys
) -> None:
    published = build_spec(build_registry(make_plugin_manager()))
    data = published["components"]["schemas"]["QualityChangeData"]
    data["properties"]["bitrate"] = {"type": "integer"}
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(published), encoding="utf-8")

    assert main(["schema-check", "--against", str(path)]) == 1
    out = capsys.readouterr().out
    assert "quality_change.data.bitrate: field removed [BREAKING]" in out

    del data["properties"]["bitrate"]
    path.write_text(json.dumps(published), encoding="utf-8")
    assert main(["schema-check", "--against", str(path)]) == 0


def test_clickstream_ddl_prints_each_tables_ddl_as_the_etl_runs_it(settings, registry, capsys):
    database = Warehouse.from_settings(settings).database
    assert main_ddl(settings, "page_view_end", "page_view_start", "video_complete") == 0
    printed = capsys.readouterr().out
    assert printed == "".join(
        f"-- {table}: {events}, from {registry[event].plugin}\n"
        f"{render(registry[event].ddl, database, table)};\n\n"
        for table, events, event in (
            ("page_views", "page_view_end, page_view_start", "page_view_end"),
            ("video_completes", "video_complete", "video_complete"),
        )
    )
    assert f"CREATE TABLE IF NOT EXISTS {database}.page_views\n" in printed
    assert main_ddl(settings) == 0
    assert capsys.readouterr().out.count("CREATE TABLE IF NOT EXISTS") == 5


def test_clickstream_ddl_refuses_an_unknown_event(settings, capsys):
    assert main_ddl(settings, "page_view") == 2
    assert capsys.readouterr().err.startswith("unknown event type(s) page_view; installed: ")


def main_ddl(settings, *events: str) -> int:
    args = parser().parse_args(["ddl", *events])
    return args.run(settings, args)
