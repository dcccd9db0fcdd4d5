"""clickstream core: what plugin authors import.

Everything a plugin needs is here, so its imports never follow the core's layout:
the hook marker, what a plugin contributes (``EventType``, ``PluginSetting``, ``View``,
``Report``, ``TrackerScript``), the field kinds of its schema (each knowing its column),
and its table: generated (``table_ddl``) or hand-written (``load_ddl``), and its row helpers.
"""

from core.host.ddl import load_ddl, table_ddl
from core.host.fields import (
    UUID,
    Boolean,
    Choice,
    Integer,
    Number,
    PositiveInteger,
    StrictBoolean,
    StrictInteger,
    Text,
    Timestamp,
)
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
    "UUID",
    "Boolean",
    "Choice",
    "EventType",
    "Integer",
    "Number",
    "PluginSetting",
    "PositiveInteger",
    "Report",
    "Row",
    "StrictBoolean",
    "StrictInteger",
    "Text",
    "Timestamp",
    "TrackerScript",
    "View",
    "default_row",
    "envelope_columns",
    "hookimpl",
    "load_ddl",
    "table_ddl",
]
