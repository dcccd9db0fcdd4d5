"""A fresh pluggy manager per application, with every installed plugin loaded."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType

import pluggy

from core.host import hookspecs
from core.host.hookspecs import PROJECT_NAME
from core.host.registry import EventType, Registry, RegistryError

#: Entry-point group under which plugin packages (built-in ones too) announce themselves.
ENTRY_POINT_GROUP = "clickstream.plugins"
#: The package of clickstream's own event types (``plugins/``): those of this repository,
#: which ``docs/openapi.json`` describes. Every other plugin publishes its own fragment.
BUILT_IN_PACKAGE = "plugins"


def make_plugin_manager(
    extra_plugins: Iterable[object] = (), load_entry_points: bool = True
) -> pluggy.PluginManager:
    """A plugin manager with the installed plugins and ``extra_plugins`` registered.

    A hook implementation whose name matches no hook (a misspelling) raises
    :class:`RegistryError` here rather than being silently ignored.
    """
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    if load_entry_points:
        manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in extra_plugins:
        manager.register(plugin)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as error:
        raise RegistryError(f"plugin {error.plugin!r}: {error}") from None
    return manager


def build_registry(
    manager: pluggy.PluginManager, keep: Callable[[str], bool] | None = None
) -> Registry:
    """Collect every plugin's contributions into one :class:`Registry`; with ``keep``, only
    those of the plugins whose name (:func:`describe_plugin`) it accepts (``is_built_in``)."""

    def by_plugin(hook: str, **kwargs: object) -> list:
        return [
            item for item in _by_plugin(manager, hook, **kwargs) if keep is None or keep(item[0])
        ]

    event_types = by_plugin("register_event_types")
    # Views over every event table need their names; a contribution that is no EventType
    # is refused by the Registry below.
    tables = sorted(
        {t.table for _, types in event_types for t in types if isinstance(t, EventType)}
    )
    return Registry(
        event_types,
        settings=by_plugin("register_settings"),
        views=by_plugin("register_views", tables=tuple(tables)),
        reports=by_plugin("register_reports"),
        tracker_scripts=by_plugin("register_tracker_scripts"),
    )


def is_built_in(plugin: str) -> bool:
    """Whether ``plugin`` (a registry's plugin name, or a module name) is one of clickstream's
    own, in the ``plugins`` package of this repository."""
    return plugin.startswith(BUILT_IN_PACKAGE + ".")


def _by_plugin(manager: pluggy.PluginManager, hook: str, **kwargs: object) -> list:
    """``(plugin name, its results)`` for each plugin implementing ``hook``, called through
    pluggy one plugin at a time, so that a conflict can name the plugins involved."""
    distributions = {id(plugin): dist for plugin, dist in manager.list_plugin_distinfo()}
    everyone = manager.get_plugins()
    contributions = []
    for impl in getattr(manager.hook, hook).get_hookimpls():
        others = [plugin for plugin in everyone if plugin is not impl.plugin]
        results = manager.subset_hook_caller(hook, remove_plugins=others)(**kwargs)
        name = describe_plugin(impl.plugin, distributions.get(id(impl.plugin)))
        contributions.append((name, [item for result in results for item in result or []]))
    return contributions


@dataclass(frozen=True)
class InstalledEventType:
    """One line of ``clickstream plugins``: an event type and where it comes from."""

    event: str
    version: int
    table: str
    plugin: str
    distribution: str
    distribution_version: str


def installed_event_types(manager: pluggy.PluginManager) -> list[InstalledEventType]:
    """Every event type of ``manager``'s plugins, by name, with its plugin and distribution.

    Builds the registry, so an invalid or conflicting plugin raises :class:`RegistryError`.
    """
    distributions = {id(plugin): dist for plugin, dist in manager.list_plugin_distinfo()}
    origins = {}
    for plugin in manager.get_plugins():
        distribution = distributions.get(id(plugin))
        origins[describe_plugin(plugin, distribution)] = (
            describe_plugin(plugin),
            distribution.project_name if distribution else "",
            distribution.version if distribution else "",
        )
    return [
        InstalledEventType(event.name, event.version, event.table, *origins[event.plugin])
        for event in build_registry(manager)
    ]


def describe_plugin(plugin: object, distribution: object | None = None) -> str:
    """A plugin's module (or class) and, when installed from a package, its name and version."""
    if isinstance(plugin, ModuleType):
        where = plugin.__name__
    else:
        where = f"{type(plugin).__module__}.{type(plugin).__qualname__}"
    if distribution is None:
        return where
    return f"{where} ({distribution.project_name} {distribution.version})"
