"""The query benchmark (``python -m bench.queries``): its tables before the sort keys are the
ones version 2 made, and it runs end to end on chDB."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.queries import PLUGINS, version_2_ddl, without_visitor_columns
from core.host.plugin_manager import build_registry, make_plugin_manager

ROOT = Path(__file__).resolve().parents[2]
VERSION_2 = ROOT / "tests" / "integration" / "version_2_tables"


@pytest.mark.parametrize("table", sorted(PLUGINS))
def test_the_tables_before_are_those_version_2_made(table: str) -> None:
    registry = build_registry(make_plugin_manager())
    snapshot = (VERSION_2 / f"{PLUGINS[table]}.sql").read_text(encoding="utf-8")
    made = "\n".join(line for line in snapshot.splitlines() if not line.startswith("--"))
    assert without_visitor_columns(version_2_ddl(registry.tables()[table].ddl, table)) == made


def test_it_prints_before_and_after_for_each_query() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.queries", "--rows", "20000", "--runs", "1"]
        + ["--tables", "page_views"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [line for line in done.stdout.splitlines() if line.startswith("| `page_views` |")]
    assert [row.split(" | ")[1] for row in rows] == [
        "a user, all time",
        "a user, 7 days",
        "a day, all users",
    ]
    assert "rebuild by 0003_sort_key.sql: page_views" in done.stdout
