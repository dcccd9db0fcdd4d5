"""clickstream core: what plugin authors import."""

from core.host.hookspecs import hookimpl
from core.host.registry import EventType, PluginSetting, Report, View

__all__ = ["EventType", "PluginSetting", "Report", "View", "hookimpl"]
