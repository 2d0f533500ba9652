"""Review of aa7280f (spool files truncated and reused, SpoolFiles): a Celery worker runs a
RunSession per task on one opened pipeline, whose spool folder lives as long as the worker. In
aa7280f each session's BatchArchiver kept up to 32 released spool files for reuse -- each still
holding the last binary it carried -- and nothing removed them when the session ended: the next
task's archiver started a list of its own. A worker's spool folder then grew with every task (disk,
and recordings left on disk after they were stored everywhere), where before aa7280f every spool
file was removed once its binary was stored."""

from __future__ import annotations

from pathlib import Path


def _spool_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_spool_files_neither_pile_up_nor_keep_binaries_across_sessions_of_one_opened_pipeline(
        pm, write_pipeline) -> None:
    from rcetl.config import load_pipeline
    from rcetl.engine import OpenedPipeline, RunSession
    from rcetl.interfaces import RunWindow
    from rcetl.run import RunInfo

    from .archive import pipeline_text

    items = 4
    path = write_pipeline(pipeline_text(items, 2))
    pipeline = load_pipeline(path, pm=pm)
    left: list[int] = []
    with OpenedPipeline(pipeline, pm) as opened:
        for n in range(6):
            # As on a worker: no blob ledger, every binary downloaded again (after the first task, the
            # folder sink finds each file in place, so no sink links the spool file: it is kept).
            session = RunSession(opened, run=RunInfo(f"task-{n}", pipeline.name, str(path), 0.0),
                                 window=RunWindow(full_refresh=True), reuse_binaries=False)
            results = [session.run_task(task) for task in session.tasks()]
            assert [r.status for r in results] == ["ok"]
            files = _spool_files(opened.spool_dir)
            assert not [f for f in files if f.stat().st_size], "a stored binary stayed in the spool folder"
            left.append(len(files))
    # Shared by the sessions, the kept files are at most one per binary in flight at once (a session
    # has `items` binaries); one list per session grows by at least one file with every task.
    assert left[-1] - left[1] < items, f"spool files left in the worker's spool folder after each task: {left}"
