"""clickstream core: what plugin authors import."""

from core.hookspecs import hookimpl
from core.registry import EventType

__all__ = ["EventType", "hookimpl"]
