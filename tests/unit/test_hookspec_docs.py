"""docs/writing-plugins.md explains every hook and EventType field; its files are the real ones."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from core.host import hookspecs
from core.host.hookspecs import PROJECT_NAME
from core.host.plugin_manager import make_plugin_manager
from core.host.registry import EventType

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "writing-plugins.md"
EXAMPLE = ROOT / "examples" / "plugin-rating"
TITLED_BLOCK = re.compile(r'^```\w+ title="([^"]+)"\n(.*?)^```$', re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)#:]+)(?:#[^)]*)?\)")
HOOKS = {
    name: function
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(function, f"{PROJECT_NAME}_spec")
}


@pytest.fixture(scope="module")
def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def test_the_hooks_found_are_the_hooks_a_plugin_manager_knows() -> None:
    manager = make_plugin_manager(load_entry_points=False)
    known = {name for name in vars(manager.hook) if not name.startswith("_")}
    assert set(HOOKS) == known
    assert HOOKS


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hook_has_a_docstring_repeated_in_the_guide(guide: str, name: str) -> None:
    doc = inspect.getdoc(HOOKS[name])
    assert doc and len(doc.split()) >= 20, f"hook {name} needs a docstring for plugin authors"
    assert f"### `{name}(" in guide, f"docs/writing-plugins.md has no section for {name}"
    assert doc in guide, (
        f"the section of {name} in docs/writing-plugins.md differs from its docstring; "
        f"paste it again:\n\n{doc}"
    )


@pytest.mark.parametrize("field", [field.name for field in dataclasses.fields(EventType)])
def test_every_event_type_field_is_explained(field: str) -> None:
    doc = inspect.getdoc(hookspecs.register_event_types)
    heads = [line[2:].split(":", 1)[0] for line in doc.splitlines() if line.startswith("* ")]
    assert any(f"`{field}`" in head for head in heads), (
        f"EventType.{field} is not explained in the register_event_types docstring"
    )


def test_every_file_shown_is_the_example_packages_file(guide: str) -> None:
    shown = dict(TITLED_BLOCK.findall(guide))
    files = {
        path.relative_to(EXAMPLE).as_posix()
        for path in EXAMPLE.rglob("*")
        if path.is_file() and path.suffix in (".py", ".sql", ".toml")
    }
    assert set(shown) == files
    for path, text in shown.items():
        assert text == (EXAMPLE / path).read_text(encoding="utf-8"), (
            f"docs/writing-plugins.md shows an outdated {path}"
        )


def test_every_local_link_of_the_guide_exists(guide: str) -> None:
    for target in LINK.findall(guide):
        assert (GUIDE.parent / target).exists(), f"broken link to {target}"
