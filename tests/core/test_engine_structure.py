"""The engine is split by lifetime, and stays split (docs/architecture.md, "The data flow").

An :class:`~rcetl.engine.opened.OpenedPipeline` is opened once and shared; a
:class:`~rcetl.engine.session.RunSession` is made per run (and per Celery task). What a task needs
of its own is built in a new session, never by copying a live object and rewriting its insides:
so no module of the core copies an engine, opened pipeline or session, and no module writes to
another object's private (underscore) attributes. Both are checked on the source with ``ast``;
the checker itself is tried on the code this split replaced, so it cannot pass by finding nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core"

#: Names of a live engine object: copying one shares its connections, sinks, pools and locks
#: with a copy that then diverges (what the Celery task did before the split).
LIVE = ("engine", "opened", "session", "pipeline", "view")


def _copy_calls(tree: ast.AST) -> list[ast.Call]:
    """Calls of ``copy.copy``/``copy.deepcopy`` (or the names imported from ``copy``)."""
    imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == "copy" for alias in node.names}
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if (isinstance(f, ast.Attribute) and f.attr in ("copy", "deepcopy") and isinstance(f.value, ast.Name)
                and f.value.id == "copy") or (isinstance(f, ast.Name) and f.id in imported):
            calls.append(node)
    return calls


def live_copies(source: str) -> list[str]:
    """``copy.copy(engine)`` and the like: a copy of anything named like a live engine object."""
    found = []
    for call in _copy_calls(ast.parse(source)):
        text = ast.unparse(call)
        if any(word in ast.unparse(arg).lower() for arg in call.args for word in LIVE):
            found.append(f"line {call.lineno}: {text}")
    return found


def _private_targets(target: ast.AST) -> list[ast.Attribute]:
    """``x._name`` written by an assignment to ``target`` (also ``x._name[k] = ...``), where ``x``
    is not ``self``/``cls``: a write into another object's private state."""
    found = []
    for sub in ast.walk(target):
        if isinstance(sub, ast.Attribute) and sub.attr.startswith("_") and not sub.attr.startswith("__") \
                and not (isinstance(sub.value, ast.Name) and sub.value.id in ("self", "cls")):
            found.append(sub)
    return found


def foreign_private_writes(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = list(node.targets)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr") \
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) \
                and str(node.args[1].value).startswith("_") and not str(node.args[1].value).startswith("__") \
                and not (isinstance(node.args[0], ast.Name) and node.args[0].id in ("self", "cls")):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        for target in targets:
            found += [f"line {node.lineno}: {ast.unparse(t)}" for t in _private_targets(target)]
    return found


def core_sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in sorted(CORE.rglob("*.py"))}


# The Celery task's per-task view, as it was before the split: both checks must name it.
BEFORE_THE_SPLIT = '''
import copy
import threading
from copy import copy as shallow

def _task_view(engine, run_id, stats):
    view = copy.copy(engine)
    view.stats = stats
    view._failed_keys = {}
    view._failed_lock = threading.Lock()
    view._failed_keys["call-log"] = set()
    other = shallow(engine)
    setattr(other, "_failed_keys", {})
    engine.budgets._created += 1
    return view
'''


def test_the_checks_find_what_the_split_removed():
    assert live_copies(BEFORE_THE_SPLIT) == ["line 7: copy.copy(engine)", "line 12: shallow(engine)"]
    assert set(foreign_private_writes(BEFORE_THE_SPLIT)) == {
        "line 9: view._failed_keys", "line 10: view._failed_lock", "line 11: view._failed_keys",
        "line 13: setattr(other, '_failed_keys', {})", "line 14: engine.budgets._created"}
    # what a class does to its own state is its business
    own = "class A:\n    def f(self):\n        self._x = 1\n        self._y[1] = 2\n    @classmethod\n" \
          "    def g(cls):\n        cls._z = 3\n"
    assert foreign_private_writes(own) == []
    assert live_copies("import copy\nrow = copy.copy(record)\n") == []


def test_no_module_of_the_core_copies_a_live_engine_object():
    found = {path: hits for path, text in core_sources().items() if (hits := live_copies(text))}
    assert found == {}, "build a RunSession on the OpenedPipeline instead of copying it"


def test_no_module_of_the_core_writes_another_objects_private_attributes():
    found = {path: hits for path, text in core_sources().items() if (hits := foreign_private_writes(text))}
    assert found == {}, "give the class a public method for it (e.g. RunSession.report_remote_requests)"



def test_sessions_on_one_opened_pipeline_keep_their_own_counters(pm, write_pipeline, tmp_path: Path) -> None:
    """What a Celery worker does: one opened pipeline, a session per task. Each session counts only
    its own work, and the sinks and connections are the same objects throughout (opened once)."""
    from rcetl.config import load_pipeline
    from rcetl.engine import OpenedPipeline, RunSession
    from rcetl.interfaces import RunWindow
    from rcetl.run import RunInfo

    from .archive import assert_archive_exact, pipeline_text

    path = write_pipeline(pipeline_text(4, 2))
    pipeline = load_pipeline(path, pm=pm)
    with OpenedPipeline(pipeline, pm) as opened:
        sinks = dict(opened.sinks)
        counted = []
        for run_id, window in (("first", RunWindow()), ("again", RunWindow(full_refresh=True))):
            session = RunSession(opened, run=RunInfo(run_id, pipeline.name, str(path), 0.0), window=window)
            results = [session.run_task(task) for task in session.tasks()]
            assert [r.status for r in results] == ["ok"]
            counted.append(session.stats.snapshot()[0]["items"].records)
        assert opened.sinks == sinks
    assert counted == [4, 4]  # the second run re-read everything and counted only its own records
    assert_archive_exact(tmp_path, 4)


def test_requests_workers_report_are_in_the_runs_budget_report(pm, write_pipeline) -> None:
    from rcetl.config import load_pipeline
    from rcetl.engine import OpenedPipeline, RunSession
    from rcetl.run import RunInfo

    from .archive import pipeline_text

    pipeline = load_pipeline(write_pipeline(pipeline_text(2, 2)), pm=pm)
    with OpenedPipeline(pipeline, pm) as opened:
        session = RunSession(opened, run=RunInfo("r", pipeline.name, "", 0.0))
        assert session.budget_report() == ({}, {})
        session.report_remote_requests({"cred": {"Heavy": 3, "Light": 1}}, {"cred": 2})
        session.report_remote_requests({"cred": {"Heavy": 5}}, {"cred": 1})  # totals so far, not increments
        requests, throttled = session.budget_report()
        assert requests == {"cred": {"Heavy": 5}} and throttled == {"cred": 1}
        assert [cred for cred, _ in session.budget_snapshots()] == ["cred"]
