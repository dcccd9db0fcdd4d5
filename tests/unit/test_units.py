"""The systemd units rendered for a checkout: every placeholder filled, the promises kept."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from core.config import Settings
from core.serve import units
from etl import cli

CHECKOUT = units.Checkout(
    root=Path("/srv/clickstream"),
    python="/srv/venv/bin/python",
    var_dir=Path("/srv/var"),
    user="clicks",
)


def service(text: str) -> configparser.RawConfigParser:
    config = configparser.RawConfigParser(strict=False)
    config.optionxform = str
    config.read_string(text)
    return config


def test_every_unit_is_rendered_without_a_placeholder_left() -> None:
    rendered = units.rendered(CHECKOUT, Settings())
    assert sorted(rendered) == [
        f"clickstream-{name}.service" for name in ("api", "auth", "etl", "kafka", "redis")
    ]
    for text in rendered.values():
        assert "{" not in text and "}" not in text
        unit = service(text)
        assert unit["Service"]["User"] == "clicks"
        assert unit["Service"]["WorkingDirectory"] == "/srv/clickstream"


def test_the_api_restarts_reloads_and_stops_with_its_workers() -> None:
    api = service(units.rendered(CHECKOUT, Settings())["clickstream-api.service"])["Service"]
    assert api["ExecStart"] == "/srv/venv/bin/python -m core.serve"
    assert api["Restart"] == "always"
    assert api["KillMode"] == "control-group"
    assert api["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert (
        api["Environment"].endswith("/srv/var/run/api.env") or "api.env" in api["EnvironmentFile"]
    )


def test_the_etl_is_given_its_pass_to_finish() -> None:
    settings = Settings.of(etl_session_timeout_s=20)
    etl = service(units.rendered(CHECKOUT, settings)["clickstream-etl.service"])["Service"]
    assert etl["ExecStart"] == "/srv/venv/bin/python -m etl.cli etl"
    assert etl["TimeoutStopSec"] == str(units.etl_stop_wait_s(settings))


def test_an_unknown_placeholder_is_an_error() -> None:
    with pytest.raises(KeyError):
        units.render("ExecStart={nowhere}", units.values(CHECKOUT, Settings()))


def test_the_command_installs_into_a_directory_or_prints(tmp_path, capsys) -> None:
    assert cli.main(["systemd", "--dir", str(tmp_path), "--var-dir", "/srv/var"]) == 0
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == sorted(units.rendered(CHECKOUT, Settings()))
    assert (
        "EnvironmentFile=-/srv/var/run/api.env"
        in (tmp_path / "clickstream-api.service").read_text()
    )
    capsys.readouterr()
    assert cli.main(["systemd", "--dry-run", "--var-dir", "/srv/var"]) == 0
    assert "# --- clickstream-etl.service" in capsys.readouterr().out
