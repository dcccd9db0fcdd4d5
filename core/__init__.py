"""clickstream core: what plugin authors import."""

from core.hookspecs import hookimpl
from core.registry import EventType, PluginSetting, Report, View

__all__ = ["EventType", "PluginSetting", "Report", "View", "hookimpl"]
