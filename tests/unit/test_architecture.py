"""docs/architecture.md names every module of core/ and etl/, the layers hold (core/ imports
nothing from etl/ or plugins/), and the tests mirror the code: every module with logic has a
test module named after it."""

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
TESTS = ROOT / "tests"
#: The modules of core/ and etl/ with no logic of their own to test, and why.
WITHOUT_LOGIC = {
    "core/__init__.py": "re-exports",
    "core/api/__init__.py": "wiring",
    "core/api/extension.py": "accessors",
    "core/host/__init__.py": "package",
    "core/host/configuration.py": "entry point",
    "core/host/hookspecs.py": "declarations",
    "core/ingest/__init__.py": "package",
    "core/serve/__init__.py": "package",
    "core/serve/__main__.py": "entry point",
    "core/serve/wsgi.py": "entry point",
    "etl/__init__.py": "package",
}
#: Modules whose test modules are being written on another branch (i12-fields, merged into
#: main already): once they are here, the mirror test asks for these lines to go.


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


def mirror_names(module: Path, clashing: set[str]) -> set[str]:
    """The names a test module of ``module`` may have: ``test_<name>.py``, or
    ``test_<package>_<name>.py`` (``test_etl_sink.py``, ``test_api_errors.py``), with
    ``_live`` for one on the real services. A name two modules share needs its package."""
    name = module.parent.name if module.name == "__init__.py" else module.stem
    stems = {f"{module.parent.name}_{name}"} | ({name} if name not in clashing else set())
    return {f"test_{stem}{live}.py" for stem in stems for live in ("", "_live")}


def test_every_module_with_logic_has_a_test_module_named_after_it() -> None:
    """tests/unit and tests/integration mirror core/ and etl/, so a module's tests are where
    its name says; a new module comes with its test module or a line in WITHOUT_LOGIC."""
    modules = sorted(
        path.relative_to(ROOT).as_posix()
        for folder in ("core", "etl")
        for path in (ROOT / folder).rglob("*.py")
    )
    stems = [Path(m).parent.name if m.endswith("/__init__.py") else Path(m).stem for m in modules]
    clashing = {stem for stem in stems if stems.count(stem) > 1}
    present = {path.name for path in TESTS.glob("*/test_*.py")}
    untested = {
        module: sorted(names)
        for module in modules
        if module not in WITHOUT_LOGIC
        and not (names := mirror_names(Path(module), clashing)) & present
    }
    assert not untested, (
        "modules without a test module named after them (write one, or list the module in "
        f"WITHOUT_LOGIC with why): {untested}"
    )
    stale = sorted(set(WITHOUT_LOGIC) - set(modules))
    assert not stale, f"WITHOUT_LOGIC lists modules that no longer exist: {stale}"
