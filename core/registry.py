"""The plugin registry: a typed façade over pluggy, so the core never calls a raw hook.

Built-in plugins and third-party packages register through the same entry-point group
(``rcetl``). Environment switches:

- ``RCETL_DISABLE_PLUGIN_AUTOLOAD=1``: load only rcetl's own (built-in) entry points.
- ``RCETL_TRACE_HOOKS=1``: log every hook call (the plugins it reaches, in pluggy's order) and its\n  result at DEBUG level.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy
from pluggy import HookImpl

from . import hookspecs
from .errors import PluginError
from .hookguard import HookGuard
from .interfaces import ConnectionSpec, EmbeddedServerSpec, ObserverSpec, SinkEntry, SourceSpec

if TYPE_CHECKING:
    import typer

    from .records import ArchivedRecord, Record
    from .run import RunInfo, RunSummary

log = logging.getLogger("rcetl.plugins")

ENTRY_POINT_GROUP = "rcetl"
BUILTIN_DISTRIBUTION = "rcetl"
GUARD_NAME = "rcetl-hookguard"


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin module, as ``rcetl plugins list`` shows it."""

    name: str
    module: str
    package: str
    version: str
    origin: str  # "built-in" | "third-party" | "registered"
    error: str | None = None
    provides: list[str] = field(default_factory=list)


class PluginManager:
    """Loads plugins and exposes what they contribute through typed methods.

    Every method calls ``pm.hook.<name>(...)``: pluggy decides the order and runs wrappers. A plugin
    that raises is named and set aside by :class:`rcetl.hookguard.HookGuard`, rcetl's own wrapper.
    """

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._guard = HookGuard(self._pm, self._plugin_failed)
        self._pm.register(self._guard, name=GUARD_NAME)
        self.infos: list[PluginInfo] = []
        self._sources: dict[str, SourceSpec] = {}
        self._sinks: dict[str, SinkEntry] = {}
        self._connections: dict[str, ConnectionSpec] = {}
        self._servers: dict[str, EmbeddedServerSpec] = {}
        self._observers: dict[str, ObserverSpec] = {}
        self._collected = False
        self._failed_now: set[str] = set()  # plugins that raised in the hook call under way
        if os.environ.get("RCETL_TRACE_HOOKS", "").lower() in {"1", "true", "yes"}:
            self._pm.add_hookcall_monitoring(_trace_before, _trace_after)

    # --- loading ---------------------------------------------------------------------------

    def load_entry_points(self) -> None:
        """Load every plugin module of the ``rcetl`` entry-point group.

        A module that fails to import or implements an unknown hook is recorded with its error and
        skipped: the other plugins keep working, and ``rcetl plugins list`` names the package to fix.
        """
        only_builtin = os.environ.get("RCETL_DISABLE_PLUGIN_AUTOLOAD", "").lower() in {"1", "true", "yes"}
        packages: dict[int, tuple[str, str]] = {}  # a distribution's metadata is parsed on every read: once each
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            if dist is None:
                package, version = "?", "?"
            else:
                if id(dist) not in packages:
                    meta = dist.metadata
                    packages[id(dist)] = (meta["Name"], meta["Version"])
                package, version = packages[id(dist)]
            builtin = (package or "").lower() == BUILTIN_DISTRIBUTION
            if only_builtin and not builtin:
                continue
            info = PluginInfo(ep.name, ep.value, package, version, "built-in" if builtin else "third-party")
            self.infos.append(info)
            try:
                module = importlib.import_module(ep.value)
                self._register(module, ep.name)
            except PluginError as exc:
                info.error = exc.message
            except Exception as exc:  # a broken third-party plugin must not break the others
                info.error = f"cannot be imported: {type(exc).__name__}: {exc}"
            if info.error:
                log.warning("plugin %r from package %r disabled: %s", ep.name, package, info.error)
        self._collected = False

    def register(self, plugin: ModuleType | object, name: str | None = None) -> None:
        """Register a plugin object directly (tests, embedding applications)."""
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        self.infos.append(PluginInfo(name, name, "-", "-", "registered"))
        self._register(plugin, name)
        self._collected = False

    def _register(self, plugin: Any, name: str) -> None:
        self._pm.register(plugin, name=name)
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self._pm.unregister(plugin)
            # pluggy keeps a hook caller for every implemented name, known or not: compare with the specs
            known = set(hookspecs.all_hook_names())
            unknown = sorted(attr for attr in dir(plugin) if attr.startswith("rcetl_") and attr not in known)
            raise PluginError(
                f"plugin {name!r} implements unknown hook(s): {', '.join(unknown) or exc}",
                hint=f"known hooks: {', '.join(hookspecs.all_hook_names())}",
            ) from None

    def _plugin_failed(self, plugin_name: str, hook_name: str, exc: Exception) -> None:
        """Told by the hook guard: a plugin's implementation raised; the call went on without it."""
        self._failed_now.add(plugin_name)
        if hook_name in hookspecs.DECLARATIVE_HOOKS or hook_name == "rcetl_cli":
            self._mark_error(plugin_name, f"hook {hook_name} failed: {type(exc).__name__}: {exc}")
        else:  # an observer: logged with its traceback, never fails an archive
            log.error("observer %r failed in %s", plugin_name, hook_name, exc_info=exc)

    # --- registry ------------------------------------------------------------------------------

    def _collect(self) -> None:
        if self._collected:
            return
        self._sources = self._gather("rcetl_sources", "source")
        self._sinks = self._gather("rcetl_sinks", "sink")
        self._connections = self._gather("rcetl_connections", "connection")
        self._servers = self._gather("rcetl_embedded_servers", "server")
        self._observers = self._gather("rcetl_observers", "observer")
        self._collected = True

    def _gather(self, hook_name: str, kind: str) -> dict[str, Any]:
        hook = getattr(self._pm.hook, hook_name)
        self._failed_now = set()
        results = hook()
        # pluggy returns the lists in call order; that order names the plugin each came from.
        called = [i.plugin_name for i in reversed(hook.get_hookimpls())
                  if not (i.wrapper or i.hookwrapper) and i.plugin_name not in self._failed_now]
        origins: list[str | None] = list(called) if len(called) == len(results) else [None] * len(results)
        into: dict[str, Any] = {}
        for plugin_name, specs in zip(origins, results, strict=True):
            for spec in specs:
                if spec.name in into:
                    log.warning("%s %r registered twice; keeping the first", kind, spec.name)
                    continue
                into[spec.name] = spec
                for info in self.infos:
                    if info.name == plugin_name:
                        info.provides.append(f"{kind}:{spec.name}")
        return into

    def _mark_error(self, plugin_name: str, error: str) -> None:
        for info in self.infos:
            if info.name == plugin_name:
                info.error = error
        log.warning("plugin %r: %s", plugin_name, error)

    def sources(self) -> dict[str, SourceSpec]:
        self._collect()
        return dict(self._sources)

    def sinks(self) -> dict[str, SinkEntry]:
        """Every registered sink by name; a sink's class is imported only by ``SinkEntry.load``."""
        self._collect()
        return dict(self._sinks)

    def connections(self) -> dict[str, ConnectionSpec]:
        self._collect()
        return dict(self._connections)

    def observers(self) -> dict[str, ObserverSpec]:
        self._collect()
        return dict(self._observers)

    def embedded_servers(self) -> dict[str, EmbeddedServerSpec]:
        self._collect()
        return dict(self._servers)

    def plugin_of(self, kind: str, name: str) -> PluginInfo | None:
        for info in self.infos:
            if f"{kind}:{name}" in info.provides:
                return info
        return None

    # --- CLI --------------------------------------------------------------------------------

    def extend_cli(self, app: typer.Typer) -> None:
        self._pm.hook.rcetl_cli(app=app)

    # --- observers: errors are logged, never raised -------------------------------------------

    def run_started(self, run: RunInfo) -> None:
        self._pm.hook.rcetl_run_started(run=run)

    def run_finished(self, run: RunInfo, summary: RunSummary) -> None:
        self._pm.hook.rcetl_run_finished(run=run, summary=summary)

    def items_archived(self, run: RunInfo, items: Sequence[ArchivedRecord]) -> None:
        """Tell observers about a batch's archived records: once through ``rcetl_items_archived``,
        and record by record through ``rcetl_item_archived`` only where a plugin implements it."""
        if not items:
            return
        self._pm.hook.rcetl_items_archived(run=run, items=items)
        if self.has_observers("rcetl_item_archived"):  # asked per batch: plugins may come and go
            hook = self._pm.hook.rcetl_item_archived
            for item in items:
                hook(run=run, item=item)

    def item_failed(self, run: RunInfo, record: Record, error: str) -> None:
        self._pm.hook.rcetl_item_failed(run=run, record=record, error=error)

    def budget_exhausted(self, run: RunInfo | None, budget: str, group: str, wait_seconds: float) -> None:
        self._pm.hook.rcetl_budget_exhausted(run=run, budget=budget, group=group, wait_seconds=wait_seconds)

    def has_observers(self, hook_name: str) -> bool:
        """Whether any plugin implements ``hook_name`` (the guard does not count)."""
        return any(i.plugin is not self._guard for i in getattr(self._pm.hook, hook_name).get_hookimpls())


def _trace_before(hook_name: str, impls: Sequence[HookImpl], kwargs: Mapping[str, Any]) -> None:
    shown = ", ".join(f"{k}={type(v).__name__}" for k, v in kwargs.items())
    names = [i.plugin_name for i in reversed(impls) if i.plugin_name != GUARD_NAME]
    log.debug("hook: %s(%s) -> plugins %s", hook_name, shown, ", ".join(repr(n) for n in names) or "(none)")


def _trace_after(outcome: pluggy.Result[Any], hook_name: str, impls: Sequence[HookImpl],
                 kwargs: Mapping[str, Any]) -> None:
    if outcome.exception is not None:
        log.debug("hook: %s raised %s: %s", hook_name, type(outcome.exception).__name__, outcome.exception)
        return
    result = outcome.get_result()
    shown = f"{len(result)} result(s)" if isinstance(result, list) else type(result).__name__
    log.debug("hook: %s returned %s", hook_name, shown)


_default: PluginManager | None = None


def get_plugin_manager(extra: Iterable[Any] = ()) -> PluginManager:
    """The process-wide manager with every entry-point plugin loaded."""
    global _default
    if _default is None:
        pm = PluginManager()
        pm.load_entry_points()
        _default = pm
    for plugin in extra:
        _default.register(plugin)
    return _default


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests)."""
    global _default
    _default = None
