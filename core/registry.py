"""The plugin registry: a typed façade over pluggy, so the core never calls a raw hook.

Built-in plugins and third-party packages register through the same entry-point group
(``rcetl``). Environment switches:

- ``RCETL_DISABLE_PLUGIN_AUTOLOAD=1``: load only rcetl's own (built-in) entry points.
- ``RCETL_TRACE_HOOKS=1``: log every hook call and its result at DEBUG level.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .interfaces import ConnectionSpec, EmbeddedServerSpec, ObserverSpec, SinkSpec, SourceSpec

if TYPE_CHECKING:
    import typer

    from .records import ArchivedRecord, Record
    from .run import RunInfo, RunSummary

log = logging.getLogger("rcetl.plugins")

ENTRY_POINT_GROUP = "rcetl"
BUILTIN_DISTRIBUTION = "rcetl"


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
    """Loads plugins and exposes what they contribute through typed methods."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self.infos: list[PluginInfo] = []
        self._sources: dict[str, SourceSpec] = {}
        self._sinks: dict[str, SinkSpec] = {}
        self._connections: dict[str, ConnectionSpec] = {}
        self._servers: dict[str, EmbeddedServerSpec] = {}
        self._observers: dict[str, ObserverSpec] = {}
        self._collected = False
        # The façade calls each implementation itself (to isolate a broken plugin), so pluggy's own
        # tracing never sees the calls: they are traced here instead.
        self._trace = os.environ.get("RCETL_TRACE_HOOKS", "").lower() in {"1", "true", "yes"}

    # --- loading ---------------------------------------------------------------------------

    def load_entry_points(self) -> None:
        """Load every plugin module of the ``rcetl`` entry-point group.

        A module that fails to import or implements an unknown hook is recorded with its error and
        skipped: the other plugins keep working, and ``rcetl plugins list`` names the package to fix.
        """
        only_builtin = os.environ.get("RCETL_DISABLE_PLUGIN_AUTOLOAD", "").lower() in {"1", "true", "yes"}
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            package = dist.metadata["Name"] if dist is not None else "?"
            version = dist.version if dist is not None else "?"
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

    def _call(self, hook: Any, impl: Any, kwargs: dict[str, Any]) -> Any:
        """Call one implementation of ``hook``, logged at DEBUG when RCETL_TRACE_HOOKS is set."""
        if not self._trace:
            return impl.function(**kwargs)
        shown = ", ".join(f"{k}={type(v).__name__}" for k, v in kwargs.items())
        log.debug("hook: %s(%s) -> plugin %r", hook.name, shown, impl.plugin_name)
        try:
            result = impl.function(**kwargs)
        except BaseException as exc:
            log.debug("hook: %s in plugin %r raised %s: %s", hook.name, impl.plugin_name, type(exc).__name__, exc)
            raise
        log.debug("hook: %s in plugin %r returned %s", hook.name, impl.plugin_name,
                  f"{len(result)} item(s)" if isinstance(result, (list, tuple)) else type(result).__name__)
        return result

    # --- registry ------------------------------------------------------------------------------

    def _collect(self) -> None:
        if self._collected:
            return
        self._sources, self._sinks, self._connections, self._servers = {}, {}, {}, {}
        self._observers = {}
        by_plugin = {id(p): n for n, p in self._pm.list_name_plugin()}
        self._gather(self._pm.hook.rcetl_sources, self._sources, "source", by_plugin)
        self._gather(self._pm.hook.rcetl_sinks, self._sinks, "sink", by_plugin)
        self._gather(self._pm.hook.rcetl_connections, self._connections, "connection", by_plugin)
        self._gather(self._pm.hook.rcetl_embedded_servers, self._servers, "server", by_plugin)
        self._gather(self._pm.hook.rcetl_observers, self._observers, "observer", by_plugin)
        self._collected = True

    def _gather(self, hook: Any, into: dict[str, Any], kind: str, by_plugin: dict[int, str]) -> None:
        for impl in hook.get_hookimpls():
            try:
                specs = self._call(hook, impl, {}) or []
            except Exception as exc:  # noqa: BLE001 - report and keep the rest working
                self._mark_error(impl.plugin_name, f"hook {hook.name} failed: {type(exc).__name__}: {exc}")
                continue
            for spec in specs:
                if spec.name in into:
                    log.warning("%s %r registered twice; keeping the first", kind, spec.name)
                    continue
                into[spec.name] = spec
                for info in self.infos:
                    if info.name == impl.plugin_name:
                        info.provides.append(f"{kind}:{spec.name}")

    def _mark_error(self, plugin_name: str, error: str) -> None:
        for info in self.infos:
            if info.name == plugin_name:
                info.error = error
        log.warning("plugin %r: %s", plugin_name, error)

    def sources(self) -> dict[str, SourceSpec]:
        self._collect()
        return dict(self._sources)

    def sinks(self) -> dict[str, SinkSpec]:
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
        for impl in self._pm.hook.rcetl_cli.get_hookimpls():
            try:
                self._call(self._pm.hook.rcetl_cli, impl, {"app": app})
            except Exception as exc:  # noqa: BLE001
                self._mark_error(impl.plugin_name, f"rcetl_cli failed: {type(exc).__name__}: {exc}")

    # --- observers: errors are logged, never raised -------------------------------------------

    def _notify(self, hook: Any, **kwargs: Any) -> None:
        for impl in hook.get_hookimpls():
            try:
                self._call(hook, impl, {k: kwargs[k] for k in impl.argnames})
            except Exception:  # noqa: BLE001 - a broken observer never fails an archive
                log.exception("observer %r failed in %s", impl.plugin_name, hook.name)

    def run_started(self, run: RunInfo) -> None:
        self._notify(self._pm.hook.rcetl_run_started, run=run)

    def run_finished(self, run: RunInfo, summary: RunSummary) -> None:
        self._notify(self._pm.hook.rcetl_run_finished, run=run, summary=summary)

    def item_archived(self, run: RunInfo, item: ArchivedRecord) -> None:
        self._notify(self._pm.hook.rcetl_item_archived, run=run, item=item)

    def item_failed(self, run: RunInfo, record: Record, error: str) -> None:
        self._notify(self._pm.hook.rcetl_item_failed, run=run, record=record, error=error)

    def budget_exhausted(self, run: RunInfo | None, budget: str, group: str, wait_seconds: float) -> None:
        self._notify(
            self._pm.hook.rcetl_budget_exhausted, run=run, budget=budget, group=group, wait_seconds=wait_seconds
        )

    def has_observers(self, hook_name: str) -> bool:
        return bool(getattr(self._pm.hook, hook_name).get_hookimpls())


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
