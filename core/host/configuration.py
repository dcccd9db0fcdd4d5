"""``python -m core.host.configuration`` prints ``docs/configuration.md``: clickstream's own
settings and those the installed plugins declare (``make docs``)."""

from __future__ import annotations

from core.config import describe
from core.host.plugin_manager import build_registry, make_plugin_manager

if __name__ == "__main__":
    print(describe(build_registry(make_plugin_manager()).settings.values()), end="")
