"""docs/architecture.md names every module of core/ and etl/, and the layers hold: core/
imports nothing from etl/ or plugins/."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAP = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
MODULES = sorted(
    path.relative_to(ROOT)
    for folder in ("core", "etl")
    for path in (ROOT / folder).rglob("*.py")
    if path.name != "__init__.py" or path.parent.name in ("core", "api")
)


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", MODULES, ids=str)
def test_every_module_is_on_the_map(module: Path) -> None:
    assert re.search(rf"(?<![\w/]){re.escape(module.name)}\b", MAP), (
        f"docs/architecture.md does not mention {module}"
    )


@pytest.mark.parametrize("module", [m for m in MODULES if m.parts[0] == "core"], ids=str)
def test_core_imports_nothing_from_the_layers_above(module: Path) -> None:
    above = {name for name in imported(ROOT / module) if name.split(".")[0] in ("etl", "plugins")}
    assert not above, f"{module} imports {sorted(above)}"


def test_every_top_level_folder_on_the_map_exists() -> None:
    folders = re.findall(r"^(\w+)/ ", MAP, re.MULTILINE)
    assert {"core", "etl", "tests"} <= set(folders)
    assert all((ROOT / folder).is_dir() for folder in folders), folders
