"""The plugin manager (``core.host.plugin_manager``): a hook no specification names stops
start-up."""

from __future__ import annotations

import pytest

from core import hookimpl
from core.host.plugin_manager import make_plugin_manager
from core.host.registry import RegistryError


def test_a_misspelled_hook_stops_start_up() -> None:
    class Misspelled:
        @hookimpl
        def register_event_type(self):
            return []

    with pytest.raises(RegistryError, match="register_event_type"):
        make_plugin_manager([Misspelled()], load_entry_points=False)
