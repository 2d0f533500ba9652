"""Run a pipeline: open it, start a run session, retry failed items, run every task, summarise.

The path of ``rcetl run`` reads top-down: :func:`run_pipeline` opens an
:class:`~.opened.OpenedPipeline` (plugins, state, budgets), starts a :class:`~.session.RunSession`
(this run's window and counters), hands the session's tasks to an executor, which calls
:meth:`RunSession.run_task` for each; a task reads its stream and gives each batch to the
:class:`~.archiver.BatchArchiver`, which stores binaries, then records, then the task commits
its checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from ..config.model import Pipeline
from ..executors import Executor, get_executor
from ..interfaces import RunWindow
from ..registry import PluginManager
from ..run import RunInfo, RunStats, RunSummary
from ..secrets import redact
from .opened import OpenedPipeline
from .session import RunSession
from .tasks import StreamTask, TaskResult

__all__ = ["OpenedPipeline", "RunSession", "StreamTask", "TaskResult", "run_pipeline"]

log = logging.getLogger("rcetl.engine")


def run_pipeline(
    pipeline: Pipeline,
    pm: PluginManager,
    *,
    window: RunWindow | None = None,
    streams: set[str] | None = None,
    executor: Executor | None = None,
    stats: RunStats | None = None,
    on_task_done: Callable[[TaskResult], None] | None = None,
    on_session: Callable[[RunSession], None] | None = None,
    retry_now: bool = False,
    redownload: bool = False,
) -> RunSummary:
    """Archive everything the pipeline describes; never raises for a failed item (see the summary).

    ``retry_now`` retries every item of the failed-item queue in this run, ignoring its backoff;
    ``redownload`` downloads every binary again, even one every sink holds with its recorded checksum;
    ``on_session`` is given the run's session once it starts (a progress display reads it).
    """
    stats = stats or RunStats()
    run = RunInfo(uuid.uuid4().hex, pipeline.name, str(pipeline.file), time.time(),
                  executor=executor.name if executor else pipeline.executor.type,
                  observers=pipeline.observers, output_dir=str(pipeline.spool_dir.parent))
    executor = executor or get_executor(pipeline.executor.type, **_executor_options(pipeline))
    if hasattr(executor, "check"):  # e.g. Celery refuses state its workers cannot share, before anything opens
        executor.check(pipeline)
    status, results = "ok", []
    with _sigterm_as_interrupt(), OpenedPipeline(pipeline, pm, run=run) as opened:
        session = RunSession(opened, run=run, window=window, streams=streams, stats=stats, retry_now=retry_now,
                             redownload=redownload)
        if on_session:
            on_session(session)
        run_id = opened.state.start_run(pipeline.name, {"run_id": run.run_id, "executor": executor.name})
        pm.run_started(run)
        try:
            session.retry_failed()
            results = executor.run(session, session.tasks(), on_task_done)
            if any(r.status == "failed" for r in results):
                status = "failed"
            elif any(r.status == "stopped" for r in results):
                status = "interrupted"
        except KeyboardInterrupt:
            session.stop_event.set("the run was interrupted")  # every wait ends now (rcetl.stopping)
            status = "interrupted"
            stats.error("interrupted by the user: the next run resumes from the last checkpoint")
        except Exception as exc:
            status = "failed"
            stats.error(f"{type(exc).__name__}: {redact(str(exc))}")
            log.exception("run failed")
        failed_items = session.failed_count()
        if status == "ok" and failed_items:
            status = "partial"
        requests, throttled = session.budget_report()
        streams_stats, sink_stats = stats.snapshot()
        summary = RunSummary(run.run_id, pipeline.name, status, run.started_at, time.time(), streams_stats,
                             sink_stats, requests, throttled, failed_items, list(stats.errors),
                             changed_records=stats.changed)
        opened.state.finish_run(run_id, status, summary.to_json())
        pm.run_finished(run, summary)
    return summary


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a service manager, ``kill``, a container stop) stops a run the way Ctrl-C does:
    waits end, what was stored stays, the checkpoint stays before anything unfinished."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only; an embedding application handles its own
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _executor_options(pipeline: Pipeline) -> dict[str, object]:
    opts = pipeline.executor
    if opts.type == "celery":
        return {"broker": opts.broker, "backend": opts.backend, "queue": opts.queue}
    return {"workers": opts.workers}
