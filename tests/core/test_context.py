"""``RunContext.standalone``: the one way to give plugins a context outside a run, and
``process_alive``: the one check whether a pid's leftovers may be cleared."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import rcetl


def test_a_standalone_context_has_working_services_and_resolves_paths_in_its_folder(tmp_path: Path) -> None:
    ctx = rcetl.RunContext.standalone(tmp_path, "tools")
    assert ctx.pipeline == "tools"
    assert ctx.resolve("archive/files") == tmp_path / "archive" / "files"
    assert ctx.resolve("/abs/path") == Path("/abs/path")
    assert ctx.spool_dir == tmp_path / ".spool" and ctx.spool_dir.is_dir()
    with ctx.coordinator.lock("token-refresh"):  # file locks in the folder
        ctx.coordinator.put("token", {"value": 1})
    assert ctx.coordinator.get("token") == {"value": 1}
    budget = ctx.budgets.budget("cred", {"heavy": rcetl.GroupLimit(10, 60.0)})
    budget.release(budget.acquire("heavy"))


def test_process_alive_tells_a_running_process_from_a_finished_one() -> None:
    assert rcetl.process_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not rcetl.process_alive(child.pid)  # reaped: nothing runs under that pid any more
    assert rcetl.process_alive(1)  # init runs as another user or root: alive, never touched
