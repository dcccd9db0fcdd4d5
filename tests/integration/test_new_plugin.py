"""``clickstream new-plugin trailer_share``, edited in nothing, installs, passes its own tests
and is listed by clickstream: the first steps of docs/writing-plugins.md, section 1.

As in test_example_plugin.py, the package goes into a virtual environment of its own that
sees the shared site-packages; every subprocess imports this checkout's clickstream
(``PYTHONPATH``), whichever checkout the shared environment has installed as editable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.host.plugin_manager import build_registry, make_plugin_manager
from tests.servers import this_checkout, venv_with

ROOT = Path(__file__).resolve().parents[2]
NAME = "trailer_share"


@dataclass(frozen=True)
class Scaffolded:
    python: Path
    package: Path


def run(python: Path | str, *args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = this_checkout(dict(os.environ))
    return subprocess.run(
        [python, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory) -> Scaffolded:
    """``clickstream new-plugin trailer_share``, pip-installed editable into a fresh venv."""
    root = tmp_path_factory.mktemp("new-plugin")
    written = run(sys.executable, "-m", "etl.cli", "new-plugin", NAME, "--dir", root / "src")
    assert written.returncode == 0, written.stderr
    package = root / "src" / "clickstream-trailer-share"
    python = venv_with(package, root / "venv", editable=True)
    return Scaffolded(python, package)


def test_it_writes_the_package_a_plugin_needs(scaffolded: Scaffolded) -> None:
    files = sorted(
        path.relative_to(scaffolded.package).as_posix()
        for path in scaffolded.package.rglob("*")
        if path.is_file() and "egg-info" not in path.as_posix() and "__pycache__" not in path.parts
    )
    assert files == [
        "README.md",
        "clickstream_trailer_share/__init__.py",
        "clickstream_trailer_share/schema.py",
        "pyproject.toml",
        "tests/test_trailer_share.py",
    ]


def test_its_own_tests_pass_as_written(scaffolded: Scaffolded) -> None:
    tests = run(
        scaffolded.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=scaffolded.package
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout and "failed" not in tests.stdout


def test_clickstream_lists_it_with_its_distribution(scaffolded: Scaffolded) -> None:
    listed = run(scaffolded.python, "-m", "etl.cli", "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    by_event = {entry["event"]: entry for entry in json.loads(listed.stdout)}
    assert by_event[NAME] == {
        "event": NAME,
        "version": 1,
        "table": "trailer_shares",
        "plugin": "clickstream_trailer_share",
        "distribution": "clickstream-trailer-share",
        "distribution_version": "0.1.0",
    }


def test_its_table_is_generated_from_the_schema(scaffolded: Scaffolded) -> None:
    ddl = run(scaffolded.python, "-m", "etl.cli", "ddl", NAME)
    assert ddl.returncode == 0, ddl.stderr
    assert ".trailer_shares\n(\n    event_id UUID" in ddl.stdout
    assert "\n    video_id String COMMENT" in ddl.stdout
    assert "\n    position_s Nullable(Float64) COMMENT" in ddl.stdout


def test_a_second_run_refuses_to_overwrite_it(scaffolded: Scaffolded) -> None:
    again = run(
        sys.executable, "-m", "etl.cli", "new-plugin", NAME, "--dir", scaffolded.package.parent
    )
    assert again.returncode == 2
    assert "already exists; nothing written" in again.stderr


def test_the_shared_environment_does_not_see_it() -> None:
    assert NAME not in build_registry(make_plugin_manager())
