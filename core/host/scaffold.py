"""``clickstream new-plugin``: a plugin package to start from, installable and tested as written.

The files are ``templates/*.tmpl`` beside this module (``string.Template``: ``$name``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path
from string import Template

from core.host.registry import EVENT_NAME

#: A plugin's name: it becomes the package ``clickstream_<name>`` and the distribution
#: ``clickstream-<name>``, which must start and end with a letter or digit; the table
#: ``<name>s`` keeps to the table names' 64 characters.
PLUGIN_NAME = re.compile(r"^[a-z](?:[a-z0-9_]{0,61}[a-z0-9])?$")
#: Template -> the file it becomes, under the package's directory.
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "__init__.py.tmpl": "{package}/__init__.py",
    "schema.py.tmpl": "{package}/schema.py",
    "test_plugin.py.tmpl": "tests/test_{name}.py",
}


class ScaffoldError(ValueError):
    """The plugin cannot be written: a name is invalid or taken, or its directory exists."""


@dataclass(frozen=True)
class PluginNames:
    """Every name of a new plugin, derived from its own."""

    name: str
    event: str
    table: str
    package: str
    distribution: str
    directory: str
    schema_class: str


def plugin_names(name: str, event: str | None = None) -> PluginNames:
    """The names of plugin ``name``, whose event is ``event`` (by default ``name``)."""
    if not PLUGIN_NAME.fullmatch(name):
        raise ScaffoldError(
            f"invalid plugin name {name!r}: lower case letters, digits and underscores, "
            "starting with a letter and not ending with an underscore, at most 63 characters "
            "(trailer_share)"
        )
    event = name if event is None else event
    if not EVENT_NAME.fullmatch(event):
        raise ScaffoldError(
            f"invalid event name {event!r}: it must match {EVENT_NAME.pattern} (trailer_shared)"
        )
    table = name if name.endswith("s") else f"{name}s"
    distribution = f"clickstream-{name.replace('_', '-')}"
    return PluginNames(
        name=name,
        event=event,
        table=table,
        package=f"clickstream_{name}",
        distribution=distribution,
        directory=distribution,
        schema_class="".join(part.capitalize() for part in event.split("_")) + "Schema",
    )


def write_plugin(
    names: PluginNames,
    parent: Path,
    *,
    taken_events: Collection[str] = (),
    taken_tables: Collection[str] = (),
) -> list[Path]:
    """Write the package of ``names`` into ``parent``/``names.directory``; the files written.

    ``taken_events`` and ``taken_tables`` are those of the installed plugins: a plugin
    claiming one of them would stop clickstream at start-up, so none is written.
    """
    if names.event in taken_events:
        raise ScaffoldError(f"event {names.event!r} is already an installed event type")
    if names.table in taken_tables:
        raise ScaffoldError(f"table {names.table!r} is already an installed plugin's table")
    root = parent / names.directory
    try:
        root.mkdir(parents=True)
    except FileExistsError:
        raise ScaffoldError(f"{root} already exists; nothing written") from None
    values = asdict(names)
    templates = files(__package__).joinpath("templates")
    rendered = {
        root / target.format(**values): Template(
            templates.joinpath(source).read_text(encoding="utf-8")
        ).substitute(values)
        for source, target in FILES.items()
    }
    for path, text in rendered.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(rendered)
