"""systemd units for a checkout: the templates of ``deploy/systemd/`` filled in for this
checkout, its python and its var directory, written where systemd reads them.

``clickstream systemd`` (``--dir`` elsewhere than /etc/systemd/system, ``--dry-run`` to
print them). On a host without systemd, ``make up`` runs the same processes under
supervisord instead (:mod:`core.serve.stack`).
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core.config import PROJECT_ROOT, Settings
from core.serve.stack import etl_stop_wait_s

TEMPLATES = PROJECT_ROOT / "deploy" / "systemd"
SYSTEM_DIR = Path("/etc/systemd/system")


@dataclass(frozen=True)
class Checkout:
    """What the units run: where, with which python, as whom, with which settings file."""

    root: Path = PROJECT_ROOT
    python: str = sys.executable
    var_dir: Path = PROJECT_ROOT / "var"
    user: str = getpass.getuser()

    @property
    def env_file(self) -> Path:
        return self.var_dir / "run" / "api.env"


def values(checkout: Checkout, settings: Settings) -> dict[str, str]:
    """The placeholders of the templates and what they become."""
    return {
        "root": str(checkout.root),
        "python": checkout.python,
        "var_dir": str(checkout.var_dir),
        "user": checkout.user,
        "env_file": str(checkout.env_file),
        "etl_stop_s": str(etl_stop_wait_s(settings)),
    }


def render(template: str, fills: Mapping[str, str]) -> str:
    """``template`` with each ``{name}`` replaced; an unknown placeholder raises KeyError."""
    return template.format_map(fills)


def rendered(checkout: Checkout, settings: Settings) -> dict[str, str]:
    """Every unit, by file name, rendered for ``checkout``."""
    fills = values(checkout, settings)
    return {
        path.name: render(path.read_text(), fills) for path in sorted(TEMPLATES.glob("*.service"))
    }


def install(units: Mapping[str, str], directory: Path) -> list[Path]:
    """Write ``units`` into ``directory``; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in units.items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written
