"""Pluggy decides the call order and runs wrappers, for built-ins and third-party packages alike.

What pluggy documents (https://pluggy.readthedocs.io/en/stable/#call-time-order): implementations
run last-registered first; ``tryfirst`` ones before the others, ``trylast`` ones after; ``wrapper=True``
and ``hookwrapper=True`` implementations run around all of them, see the result and may replace it.
A third-party package installed with an ``rcetl`` entry point gets exactly that here. The one thing
rcetl adds is its own outermost wrapper (``rcetl.hookguard``): a plugin that raises is named and the
call goes on without it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import rcetl
from rcetl import hookguard, hookspecs
from rcetl.registry import PluginManager
from rcetl.run import RunInfo

from .test_registry import make_dist

EVENTS: list[str] = []


def ordered(option: str, *sinks: str) -> str:
    """A package whose rcetl_run_started and rcetl_sinks are both marked ``option=True``."""
    entries = ", ".join(f"rcetl.SinkEntry({name!r}, MySink)" for name in sinks)
    return f'''
import rcetl
from tests.core.test_pluggy_order import EVENTS, MySink

@rcetl.hookimpl({option}=True)
def rcetl_run_started(run):
    EVENTS.append("{option}")

@rcetl.hookimpl({option}=True)
def rcetl_sinks():
    return [{entries}]
'''


# Four third-party packages, each with one implementation of rcetl_run_started and rcetl_sinks.
THIRD_PARTY = {
    # "filesystem" is named like a built-in: being called first, its entry is the one kept
    "rcetl_order_first": ordered("tryfirst", "filesystem"),
    "rcetl_order_last": ordered("trylast", "sqlite", "late-sink"),
    "rcetl_order_wrapper": '''
import rcetl
from tests.core.test_pluggy_order import EVENTS

@rcetl.hookimpl(wrapper=True)
def rcetl_run_started(run):
    EVENTS.append("wrapper: before")
    try:
        return (yield)
    finally:
        EVENTS.append("wrapper: after")

@rcetl.hookimpl(wrapper=True)
def rcetl_sinks():
    lists = yield
    # a wrapper sees every plugin's result and may change it: hide the dropbox sink
    return [[e for e in entries if e.name != "dropbox"] for entries in lists]
''',
    "rcetl_order_oldwrapper": '''
import rcetl
from tests.core.test_pluggy_order import EVENTS

@rcetl.hookimpl(hookwrapper=True)
def rcetl_run_started(run):
    EVENTS.append("hookwrapper: before")
    outcome = yield
    EVENTS.append(f"hookwrapper: after ({'ok' if outcome.exception is None else 'raised'})")
''',
}


class MySink(rcetl.RecordSink):
    description = "a third party's sink"

    def write(self, records: object) -> None:
        pass


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PluginManager:
    site = tmp_path / "site"
    site.mkdir()
    for module, source in THIRD_PARTY.items():
        make_dist(site, module.replace("_", "-"), "1.0", {module.removeprefix("rcetl_"): module}, {module: source})
    monkeypatch.syspath_prepend(str(site))
    EVENTS.clear()
    pm = PluginManager()
    pm.load_entry_points()
    assert not [i for i in pm.infos if i.error], [i.error for i in pm.infos if i.error]
    return pm


def run_info() -> RunInfo:
    return RunInfo("r-order", "p", "p.yaml", 0.0)


def test_third_party_tryfirst_trylast_and_wrappers_run_in_pluggys_documented_order(
        third_party: PluginManager) -> None:
    third_party.run_started(run_info())
    assert EVENTS == [
        # wrappers first, around every implementation; the later registered (entry points load
        # in name order: order_oldwrapper, then order_wrapper) is the outer one
        "wrapper: before", "hookwrapper: before",
        "tryfirst",
        # (the built-in observers run here: see the next test)
        "trylast",
        "hookwrapper: after (ok)", "wrapper: after",
    ]


def test_built_ins_are_ordered_by_pluggy_among_third_parties(third_party: PluginManager,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    # The call order pluggy hands to its monitor (RCETL_TRACE_HOOKS), the guard left out.
    monkeypatch.setenv("RCETL_TRACE_HOOKS", "1")
    caplog.set_level(logging.DEBUG, logger="rcetl.plugins")
    pm = PluginManager()
    pm.load_entry_points()
    pm.run_started(run_info())
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("hook: rcetl_run_started(")]
    order = [name.strip("'") for name in line.split(" -> plugins ")[1].split(", ")]
    assert order[:2] == ["order_wrapper", "order_oldwrapper"]
    assert order[2] == "order_first" and order[-1] == "order_last"
    assert "observers" in order[3:-1]  # the built-in report/notify observers: between tryfirst and trylast


def test_tryfirst_wins_a_name_and_a_wrapper_can_change_what_is_registered(third_party: PluginManager) -> None:
    sinks = third_party.sinks()
    assert sinks["filesystem"].target is MySink  # the tryfirst plugin's entry came first
    assert third_party.plugin_of("sink", "filesystem").name == "order_first"
    assert sinks["sqlite"].target == "rcetl.plugins.sinks.sql.variants:SqliteSink"  # trylast came after the built-in
    assert sinks["late-sink"].target is MySink
    assert "dropbox" not in sinks and "s3" in sinks  # the wrapper filtered the results


def test_a_raising_observer_is_named_and_only_the_others_run(third_party: PluginManager,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    class Before:
        @rcetl.hookimpl
        def rcetl_run_started(self, run: RunInfo) -> None:
            calls.append("before")

    class Broken:
        @rcetl.hookimpl
        def rcetl_run_started(self, run: RunInfo) -> None:
            raise RuntimeError("webhook down")

    third_party.register(Before(), "before")  # registered first: called after Broken
    third_party.register(Broken(), "broken")
    third_party.run_started(run_info())
    assert calls == ["before"]  # the implementation after the broken one still ran, once
    assert EVENTS == [
        "wrapper: before", "hookwrapper: before", "tryfirst",
        "hookwrapper: after (raised)", "wrapper: after",  # the wrappers saw the exception, as pluggy does it
        "trylast",  # then the guard called those pluggy had not reached (unwrapped: wrappers never run twice)
    ]
    [record] = [r for r in caplog.records if "'broken'" in r.getMessage()]
    assert record.getMessage() == "observer 'broken' failed in rcetl_run_started"


def test_a_raising_registry_hook_is_named_and_the_others_are_asked_again_without_it(
        third_party: PluginManager) -> None:
    class Broken:
        @rcetl.hookimpl(tryfirst=True)
        def rcetl_sinks(self) -> list[rcetl.SinkEntry]:
            raise KeyError("no such table")

    third_party.register(Broken(), "broken-sinks")
    sinks = third_party.sinks()
    assert {"filesystem", "late-sink", "s3"} <= set(sinks) and "dropbox" not in sinks
    assert third_party.plugin_of("sink", "late-sink").name == "order_last"
    [info] = [i for i in third_party.infos if i.name == "broken-sinks"]
    assert info.error == "hook rcetl_sinks failed: KeyError: 'no such table'"


def test_an_exception_that_is_no_plugins_fault_is_not_swallowed(third_party: PluginManager) -> None:
    with pytest.raises(Exception, match="must provide argument"), pytest.warns(UserWarning, match="'run'"):
        third_party._pm.hook.rcetl_run_started()  # a caller bug (no `run`): pluggy's own error


def test_the_guard_wraps_every_hook_outermost() -> None:
    pm = PluginManager()
    for name in hookspecs.all_hook_names():
        impls = getattr(pm._pm.hook, name).get_hookimpls()
        [guard] = [i for i in impls if isinstance(i.plugin, hookguard.HookGuard)]
        assert guard.wrapper and guard.tryfirst, name
        spec = getattr(pm._pm.hook, name).spec
        assert spec is not None and not spec.opts.get("firstresult"), name  # rcetl declares no firstresult hook


class PickSpec:
    """A firstresult hook, declared only here: rcetl has none of its own, and the guard must keep
    pluggy's semantics for one should it ever get one."""

    @hookspecs.hookspec(firstresult=True)
    def rcetl_pick(self, options: list[str]) -> str | None:
        """Called to pick one option; the first non-None answer wins."""


class PickGuard(hookguard.HookGuard):
    @rcetl.hookimpl(wrapper=True, tryfirst=True)
    def rcetl_pick(self, options: list[str]) -> hookguard.Wrapped:
        return (yield from self._guard("rcetl_pick", {"options": options}))


def test_firstresult_stops_at_the_first_answer_in_pluggys_order_and_survives_a_raising_plugin() -> None:
    import pluggy

    failed: list[tuple[str, str]] = []
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(PickSpec)
    pm.register(PickGuard(pm, lambda plugin, hook, exc: failed.append((plugin, hook))), name="guard")
    called: list[str] = []

    def plugin(name: str, answer: str | None, **opts: bool) -> object:
        def rcetl_pick(options: list[str]) -> str | None:
            called.append(name)
            if answer == "raise":
                raise RuntimeError(name)
            return answer
        return type(name, (), {"rcetl_pick": staticmethod(rcetl.hookimpl(**opts)(rcetl_pick))})

    pm.register(plugin("last", "z", trylast=True), name="last")
    pm.register(plugin("plain", None), name="plain")
    pm.register(plugin("first", "a", tryfirst=True), name="first")
    assert pm.hook.rcetl_pick(options=["a", "z"]) == "a" and called == ["first"]  # nothing after it runs

    called.clear()
    pm.unregister(name="first")
    pm.register(plugin("broken", "raise", tryfirst=True), name="broken")
    assert pm.hook.rcetl_pick(options=["a", "z"]) == "z"  # the rest, in order: plain says None, last answers
    assert called == ["broken", "plain", "last"] and failed == [("broken", "rcetl_pick")]
