"""``clickstream new-plugin``: names checked, nothing overwritten, a package that is a plugin."""

from __future__ import annotations

import configparser
import fnmatch
import importlib
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from core.host import scaffold
from core.host.scaffold import ScaffoldError, plugin_names, write_plugin
from core.testing import check_plugin
from etl import cli

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "core" / "host" / "templates"


@pytest.fixture
def written(tmp_path: Path) -> Path:
    write_plugin(plugin_names("trailer_share"), tmp_path)
    return tmp_path / "clickstream-trailer-share"


@pytest.fixture
def imported(written: Path, monkeypatch):
    """The written package, importable as if installed."""
    monkeypatch.syspath_prepend(str(written))
    yield importlib.import_module("clickstream_trailer_share")
    for name in [name for name in sys.modules if name.startswith("clickstream_trailer_share")]:
        del sys.modules[name]


def test_the_names_are_derived_from_the_plugins() -> None:
    names = plugin_names("trailer_share")
    assert (names.event, names.table, names.package) == (
        "trailer_share",
        "trailer_shares",
        "clickstream_trailer_share",
    )
    assert (names.distribution, names.directory) == (
        "clickstream-trailer-share",
        "clickstream-trailer-share",
    )
    assert names.schema_class == "TrailerShareSchema"
    shared = plugin_names("trailer_share", event="trailer_shared")
    assert (shared.event, shared.table, shared.schema_class) == (
        "trailer_shared",
        "trailer_shares",
        "TrailerSharedSchema",
    )
    assert plugin_names("ratings").table == "ratings"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Trailer",
        "trailer-share",
        "1trailer",
        "_trailer",
        "trailer_",
        "t" * 64,
        "é",
        "trailer\n",
    ],
)
def test_other_plugin_names_are_refused(name: str) -> None:
    with pytest.raises(ScaffoldError, match="invalid plugin name"):
        plugin_names(name)


@pytest.mark.parametrize("event", ["Shared", "trailer-shared", "x" * 65, "trailer_shared\n"])
def test_other_event_names_are_refused(event: str) -> None:
    with pytest.raises(ScaffoldError, match="invalid event name"):
        plugin_names("trailer_share", event=event)


def test_it_writes_the_five_files(written: Path) -> None:
    files = sorted(path.relative_to(written).as_posix() for path in written.rglob("*.*"))
    assert files == [
        "README.md",
        "clickstream_trailer_share/__init__.py",
        "clickstream_trailer_share/schema.py",
        "pyproject.toml",
        "tests/test_trailer_share.py",
    ]
    assert "$" not in "".join(path.read_text() for path in written.rglob("*.py"))


def test_the_pyproject_declares_the_entry_point_and_depends_on_clickstream(written: Path) -> None:
    project = tomllib.loads((written / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["name"] == "clickstream-trailer-share"
    assert project["project"]["dependencies"] == ["clickstream>=0.1"]
    assert project["project"]["entry-points"]["clickstream.plugins"] == {
        "trailer_share": "clickstream_trailer_share"
    }
    assert project["tool"]["setuptools"]["packages"] == ["clickstream_trailer_share"]


def test_the_written_plugin_passes_clickstreams_checks(imported) -> None:
    checked = check_plugin(imported)
    [event_type] = checked.registry
    assert (event_type.name, event_type.table, event_type.version) == (
        "trailer_share",
        "trailer_shares",
        1,
    )
    assert event_type.description
    assert [(c.name, c.type) for c in checked.columns["trailer_shares"]][-2:] == [
        ("video_id", "String"),
        ("position_s", "Nullable(Float64)"),
    ]


def test_the_trailer_share_journey_of_the_guide_is_a_schema_edit(
    written: Path, monkeypatch
) -> None:
    """docs/writing-plugins.md, section 1: a field added to the schema and the example."""
    package = written / "clickstream_trailer_share"
    schema = (package / "schema.py").read_text(encoding="utf-8")
    schema = schema.replace(
        "from core import Number, Text", "from core import Choice, Number, Text"
    )
    schema += '    channel = Choice(("link", "email", "whatsapp", "telegram"), required=True)\n'
    (package / "schema.py").write_text(schema, encoding="utf-8")
    init = (package / "__init__.py").read_text(encoding="utf-8")
    init = init.replace('"position_s": 42.5}', '"position_s": 42.5, "channel": "link"}')
    (package / "__init__.py").write_text(init, encoding="utf-8")
    monkeypatch.syspath_prepend(str(written))
    try:
        checked = check_plugin(importlib.import_module("clickstream_trailer_share"))
    finally:
        for name in [name for name in sys.modules if name.startswith("clickstream_trailer_share")]:
            del sys.modules[name]
    assert [(c.name, c.type) for c in checked.columns["trailer_shares"]][-3:] == [
        ("video_id", "String"),
        ("position_s", "Nullable(Float64)"),
        ("channel", "LowCardinality(String)"),
    ]
    checked.assert_refused(
        "trailer_share", checked.example("trailer_share", channel="fax"), "channel"
    )
    assert (
        checked.row("trailer_share", checked.example("trailer_share", position_s=...))["position_s"]
        is None
    )


def test_the_readme_gives_the_next_steps(written: Path) -> None:
    readme = (written / "README.md").read_text(encoding="utf-8")
    for step in (
        "clickstream_trailer_share/schema.py",
        "pip install -e ./clickstream-trailer-share",
        "python -m pytest",
        "clickstream ddl trailer_share",
        "scripts/app.sh down && scripts/app.sh up",
        "curl -s localhost:8000/api/v1/events",
        'clickstream sql "SELECT * FROM trailer_shares"',
    ):
        assert step in readme


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
def test_the_written_code_is_lint_clean_and_formatted(written: Path) -> None:
    for command in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
        done = subprocess.run(command, cwd=written, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_an_existing_directory_is_not_overwritten(written: Path) -> None:
    schema = written / "clickstream_trailer_share" / "schema.py"
    schema.write_text("# mine\n", encoding="utf-8")
    with pytest.raises(ScaffoldError, match="already exists; nothing written"):
        write_plugin(plugin_names("trailer_share"), written.parent)
    assert schema.read_text(encoding="utf-8") == "# mine\n"


def test_an_installed_event_or_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="'element_click' is already an installed event"):
        write_plugin(plugin_names("element_click"), tmp_path, taken_events={"element_click"})
    with pytest.raises(ScaffoldError, match="'element_clicks' is already an installed"):
        write_plugin(
            plugin_names("element_click", event="clicked"),
            tmp_path,
            taken_tables={"element_clicks"},
        )
    assert not any(tmp_path.iterdir())


def test_the_command_writes_it_and_prints_the_next_steps(tmp_path: Path, capsys) -> None:
    assert cli.main(["new-plugin", "trailer_share", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'clickstream-trailer-share' / 'pyproject.toml'}" in out
    assert f"pip install -e {tmp_path / 'clickstream-trailer-share'}" in out
    assert (tmp_path / "clickstream-trailer-share" / "tests" / "test_trailer_share.py").is_file()


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["Trailer"], "invalid plugin name 'Trailer'"),
        (["x", "--event", "Bad"], "invalid event name 'Bad'"),
        (["page_view_start"], "event 'page_view_start' is already an installed event type"),
        (["element_click", "--event", "clicked"], "table 'element_clicks' is already"),
    ],
)
def test_the_command_refuses_with_status_2(tmp_path: Path, capsys, argv, error: str) -> None:
    assert cli.main(["new-plugin", *argv, "--dir", str(tmp_path)]) == 2
    assert error in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_the_command_refuses_to_overwrite_with_status_2(tmp_path: Path, capsys) -> None:
    (tmp_path / "clickstream-trailer-share").mkdir()
    assert cli.main(["new-plugin", "trailer_share", "--dir", str(tmp_path)]) == 2
    assert "already exists; nothing written" in capsys.readouterr().err
    assert not any((tmp_path / "clickstream-trailer-share").iterdir())


def test_the_templates_are_package_data() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    patterns = config["options.package_data"]["core.host"].split(",")
    for template in scaffold.FILES:
        assert (TEMPLATES / template).is_file()
        assert any(fnmatch.fnmatch(f"templates/{template}", p.strip()) for p in patterns)
    assert sorted(path.name for path in TEMPLATES.iterdir()) == sorted(scaffold.FILES)
