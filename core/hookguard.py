"""rcetl's own ``wrapper=True`` implementation of every hook: a broken plugin is named and set aside.

Pluggy calls every implementation (``tryfirst``, ``trylast``, ``wrapper`` and ``hookwrapper``
behave exactly as pluggy documents); this wrapper sits outermost and only steps in when an
implementation raises. It finds the implementation the exception came from in the traceback, tells
the registry (which names the plugin in ``rcetl plugins list`` and the log), and finishes the call
without it:

- declarative hooks (``rcetl_sources``, ``rcetl_sinks``, ...) only return specs, so they are asked
  again without the broken plugin: every other plugin's contributions are kept;
- hooks with effects (``rcetl_cli`` and the observer hooks) never run an implementation twice: the
  implementations pluggy had not reached yet are called, the ones that ran are not called again.

Pluggy offers no per-implementation error handling of its own (an exception ends the call), which
is why this wrapper exists; it is the only place rcetl catches a plugin's exception.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from .hookspecs import DECLARATIVE_HOOKS, hookimpl

if TYPE_CHECKING:
    import typer

    from .records import ArchivedRecord, Record
    from .run import RunInfo, RunSummary

#: Told of each failure: (plugin name, hook name, exception).
FailureHandler = Callable[[str, str, Exception], None]
Wrapped = Generator[None, Any, Any]


class HookGuard:
    """Registered under the name ``rcetl-hookguard`` by :class:`rcetl.registry.PluginManager`."""

    def __init__(self, pm: pluggy.PluginManager, on_failure: FailureHandler) -> None:
        self._pm = pm
        self._on_failure = on_failure

    def _guard(self, hook_name: str, kwargs: dict[str, Any]) -> Wrapped:
        try:
            return (yield)
        except Exception as exc:
            impls = getattr(self._pm.hook, hook_name).get_hookimpls()
            culprit = _culprit(exc, [i for i in impls if i.plugin is not self])
            if culprit is None:  # raised by pluggy itself or by the caller's arguments: not a plugin's fault
                raise
            self._on_failure(culprit.plugin_name, hook_name, exc)
            rest = self._rest(hook_name, impls, culprit)
            if rest is None:
                return [] if hook_name in DECLARATIVE_HOOKS else None
            return rest(**kwargs)

    def _rest(self, hook_name: str, impls: list[Any], culprit: Any) -> Any:
        """The hook caller that finishes the call without ``culprit`` (None: nothing is left to call)."""
        if hook_name in DECLARATIVE_HOOKS:
            return self._pm.subset_hook_caller(hook_name, remove_plugins=[culprit.plugin])
        if culprit.wrapper or culprit.hookwrapper:
            return None  # a wrapper failed: which implementations it let run cannot be known
        # pluggy calls the non-wrapper implementations in reverse list order; those before the
        # culprit already ran, and other wrappers already wrapped this call: neither runs twice.
        order = [i for i in reversed(impls) if not (i.wrapper or i.hookwrapper)]
        ran = order[: order.index(culprit) + 1]
        wrappers = [i for i in impls if (i.wrapper or i.hookwrapper) and i.plugin is not self]
        if len(ran) == len(order):
            return None
        return self._pm.subset_hook_caller(hook_name, remove_plugins=[i.plugin for i in ran + wrappers])

    # One method per hook in rcetl.hookspecs (tests/core/test_pluggy_order.py checks there is one).

    @hookimpl(wrapper=True, tryfirst=True)
    def rcetl_sources(self) -> Wrapped:
        return (yield from self._guard("rcetl_sources", {}))

    @hookimpl(wrapper=True, tryfirst=True)
    def rcetl_sinks(self) -> Wrapped:
        return (yield from self._guard("rcetl_sinks", {}))

    @hookimpl(wrapper=True, tryfirst=True)
    def rcetl_connections(self) -> Wrapped:
        return (yield from self._guard("rcetl_connections", {}))

    @hookimpl(wrapper=True, tryfirst=True)
    def rcetl_embedded_servers(self) -> Wrapped:
        return (yield from self._guard("rcetl_embedded_servers", {}))

    @hookimpl(wrapper=True, tryfirst=True)
    def rcetl_observers(self) -> Wrapped:
        return (yield from self._guard("rcetl_observers", {}))

    @hookimpl(wrapper=True, tryfirst=True)
    def rcetl_cli(self, app: typer.Typer) -> Wrapped:
        return (yield from self._guard("rcetl_cli", {"app": app}))

    @hookimpl(wrapper=True, tryfirst=True)
    def rcetl_run_started(self, run: RunInfo) -> Wrapped:
        return (yield from self._guard("rcetl_run_started", {"run": run}))

    @hookimpl(wrapper=True, tryfirst=True)
    def rcetl_run_finished(self, run: RunInfo, summary: RunSummary) -> Wrapped:
        return (yield from self._guard("rcetl_run_finished", {"run": run, "summary": summary}))

    @hookimpl(wrapper=True, tryfirst=True)
    def rcetl_item_archived(self, run: RunInfo, item: ArchivedRecord) -> Wrapped:
        return (yield from self._guard("rcetl_item_archived", {"run": run, "item": item}))

    @hookimpl(wrapper=True, tryfirst=True)
    def rcetl_items_archived(self, run: RunInfo, items: Sequence[ArchivedRecord]) -> Wrapped:
        return (yield from self._guard("rcetl_items_archived", {"run": run, "items": items}))

    @hookimpl(wrapper=True, tryfirst=True)
    def rcetl_item_failed(self, run: RunInfo, record: Record, error: str) -> Wrapped:
        return (yield from self._guard("rcetl_item_failed", {"run": run, "record": record, "error": error}))

    @hookimpl(wrapper=True, tryfirst=True)
    def rcetl_budget_exhausted(self, run: RunInfo | None, budget: str, group: str,
                               wait_seconds: float) -> Wrapped:
        return (yield from self._guard("rcetl_budget_exhausted",
                                       {"run": run, "budget": budget, "group": group, "wait_seconds": wait_seconds}))


def _culprit(exc: BaseException, impls: list[Any]) -> Any:
    """The implementation whose frame is innermost in the exception's traceback, or None when no
    implementation's code is on it. Innermost, because pluggy throws the exception into every
    wrapper on its way out, so the wrappers' frames are on the traceback too, outside the culprit's."""
    by_code = {}
    for impl in impls:
        code = getattr(impl.function, "__code__", None)
        if code is not None:
            by_code[code] = impl
    found = None
    tb = exc.__traceback__
    while tb is not None:
        found = by_code.get(tb.tb_frame.f_code, found)
        tb = tb.tb_next
    return found
