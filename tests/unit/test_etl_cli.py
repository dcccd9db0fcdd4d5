"""The ``clickstream`` console script (``etl.cli``): its subcommands and what they print."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.api.openapi import build_spec
from core.host.plugin_manager import build_registry, make_plugin_manager
from etl.cli import main, parser
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
