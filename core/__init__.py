"""clickstream core: what plugin authors import.

Everything a plugin needs is here, so its imports never follow the core's layout:
the hook marker, what a plugin contributes (``EventType``, ``PluginSetting``, ``View``,
``Report``, ``TrackerScript``), strict field kinds for its schema, and its table's DDL and
row helpers.
"""

from core.host.ddl import load_ddl
from core.host.fields import PositiveInteger, StrictBoolean, StrictInteger, Text
from core.host.hookspecs import hookimpl
from core.host.registry import (
    EventType,
    PluginSetting,
    Report,
    Row,
    TrackerScript,
    View,
    default_row,
)
from core.message import ENVELOPE_COLUMNS, envelope_columns

__all__ = [
    "ENVELOPE_COLUMNS",
    "EventType",
    "PluginSetting",
    "PositiveInteger",
    "Report",
    "Row",
    "StrictBoolean",
    "StrictInteger",
    "Text",
    "TrackerScript",
    "View",
    "default_row",
    "envelope_columns",
    "hookimpl",
    "load_ddl",
]
