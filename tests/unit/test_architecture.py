"""docs/architecture.md names every module of core/ and etl/, and the layers hold: core/
imports nothing from etl/ or plugins/."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from core.host.plugin_manager import build_registry, make_plugin_manager

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


def test_core_and_etl_know_no_event_type_of_a_plugin() -> None:
    """What a built-in plugin ships (its events, tables, views, tracker script) lives in
    plugins/, reached through hooks any plugin can implement."""
    registry = build_registry(make_plugin_manager())
    names = {*registry.names, *registry.tables(), *registry.views, *registry.reports}
    sources = [
        path
        for folder in ("core", "etl")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in (".py", ".js", ".sql")
    ]
    found = {
        (str(path.relative_to(ROOT)), name)
        for path in sources
        for name in names
        if re.search(rf"\b{name}\b", path.read_text(encoding="utf-8"))
    }
    assert not found


def test_no_two_modules_import_each_other_even_for_types() -> None:
    """One road each way: the imports of core/ and etl/ form no loop."""
    names = {".".join(m.with_suffix("").parts).removesuffix(".__init__"): m for m in MODULES}
    known = set(names)
    graph = {}
    for name, module in names.items():
        tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
        graph[name] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                graph[name].update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                # ``from package import module`` reaches the module, not the package's
                # __init__ (which Python has loaded first either way).
                for alias in node.names:
                    whole = f"{node.module}.{alias.name}"
                    graph[name].add(whole if whole in known else node.module)

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for name in graph.get(start, ()):
            if name == target:
                return True
            if name in known and name not in seen:
                seen.add(name)
                if reaches(name, target, seen):
                    return True
        return False

    looped = sorted(name for name in graph if reaches(name, name, set()))
    assert not looped, f"modules importing themselves through others: {looped}"
