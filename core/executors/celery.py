"""The Celery executor: a run's tasks go to ``rcetl worker`` processes on any number of machines.

The submitting command keeps the run: it retries the failed-item queue, sends one message per
task (see :mod:`.celery_app` for what a message holds), and folds each result's counters into the
run's :class:`~rcetl.run.RunStats`, so progress and the summary read as with the local executor.
What workers share lives outside them: budgets and the token in Redis (``budgets: {backend:
redis}``), checkpoints and the failed-item queue in a SQL state store every worker reaches.
:meth:`CeleryExecutor.check` refuses a pipeline that does not share them, before anything runs.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from . import Executor

if TYPE_CHECKING:
    from ..config.model import Pipeline
    from ..engine.session import RunSession
    from ..engine.tasks import StreamTask, TaskResult
    from ..run import RunStats

log = logging.getLogger("rcetl.executors.celery")

#: How often the submitting command looks at outstanding results.
POLL_SECONDS = 0.2
#: Say once that nobody took a task yet after this long (no worker listening on the queue?);
#: ``RCETL_IDLE_WARNING_SECONDS`` changes it (tests, or a fleet that is slow to scale up).
IDLE_WARNING_SECONDS = 30.0


def idle_warning_seconds() -> float:
    try:
        return float(os.environ.get("RCETL_IDLE_WARNING_SECONDS") or IDLE_WARNING_SECONDS)
    except ValueError:
        return IDLE_WARNING_SECONDS


def broker_url(explicit: str | None) -> str | None:
    return explicit or os.environ.get("RCETL_BROKER_URL") or None


class CeleryExecutor(Executor):
    name = "celery"

    def __init__(self, broker: str | None = None, backend: str | None = None, queue: str = "rcetl",
                 timeout: float | None = None) -> None:
        self.broker = broker_url(broker)
        self.backend = backend or os.environ.get("RCETL_RESULT_BACKEND") or None
        self.queue = queue or "rcetl"
        self.timeout = timeout

    # --- checks ------------------------------------------------------------------------------

    def check(self, pipeline: Pipeline) -> None:
        """Refuse a pipeline whose workers could not share state; says how to fix each problem."""
        where = f"{pipeline.file}"
        problems: list[tuple[str, str]] = []
        if not self.broker:
            problems.append(("executor.broker: the Celery executor needs a broker",
                             "add `executor: {type: celery, broker: amqp://USER:PASS@HOST:5672//}` (RabbitMQ) or "
                             "`broker: redis://HOST:6379/1`, or set RCETL_BROKER_URL"))
        if pipeline.budgets.backend != "redis":
            problems.append(("budgets.backend: workers must share each credential's rate budget and token, "
                             "which live in this process's memory with `backend: memory`",
                             "add `budgets: {backend: redis, url: redis://HOST:6379/0}` (the same Redis for "
                             "every worker)"))
        if pipeline.state_url.startswith("sqlite"):
            problems.append((f"state: {pipeline.state_url.split('?')[0]} is a SQLite file that workers on "
                             "other machines cannot reach, so they could not share checkpoints",
                             "set `state: postgresql+psycopg://USER@HOST:5432/DB` or "
                             "`mysql+pymysql://USER@HOST:3306/DB` (a database every worker reaches)"))
        if problems:
            message = f"{where}: the pipeline cannot run on Celery workers:\n" + "\n".join(
                f"  - {m}" for m, _ in problems)
            raise ConfigError(message, hint="; ".join(h for _, h in problems))

    # --- running -------------------------------------------------------------------------------

    def app(self) -> Any:
        from .celery_app import make_app

        assert self.broker
        return make_app(self.broker, self.backend, self.queue)

    def run(self, session: RunSession, tasks: list[StreamTask],
            on_done: Callable[[TaskResult], None] | None = None) -> list[TaskResult]:
        from .celery_app import TASK_NAME, build_message

        self.check(session.pipeline)
        if not tasks:
            return []
        text = session.pipeline.file.read_bytes()
        app = self.app()
        pending: dict[str, tuple[StreamTask, Any]] = {}
        results: list[TaskResult] = []
        remote = _RemoteRequests(_run_ledger(session))
        try:
            for task in tasks:
                message = build_message(session.pipeline.file, text, session.run.run_id, session.window,
                                        session.selected, task.to_json())
                if remote.ledger is not None:
                    message["ledger"] = {"url": remote.ledger_url, "prefix": LEDGER_PREFIX}
                async_result = app.send_task(TASK_NAME, args=[message], queue=self.queue)
                pending[async_result.id] = (task, async_result)
            log.info("sent %d task(s) of run %s to queue %r", len(tasks), session.run.run_id[:8], self.queue)
            started = time.monotonic()
            warned = False
            idle_after = idle_warning_seconds()
            while pending:
                progressed = False
                for task_id, (task, ar) in list(pending.items()):
                    if not ar.ready():
                        continue
                    del pending[task_id]
                    progressed = True
                    result = self._result(task, ar)
                    log.info("task %s %s on %s in %ss", task.label, result.status, result.worker or "?",
                             result.extra.get("seconds", "?"))
                    _merge(session.stats, result)
                    remote.add(result)
                    session.report_remote_requests(remote.requests, remote.throttled)
                    results.append(result)
                    if on_done:
                        on_done(result)
                if progressed:
                    continue
                waited = time.monotonic() - started
                if self.timeout is not None and waited > self.timeout:
                    raise TimeoutError(f"{len(pending)} task(s) not finished after {self.timeout:.0f}s")
                if not warned and not results and waited > idle_after:
                    warned = True
                    if _any_started(pending.values()):
                        continue  # workers are busy with the run: nothing to warn about
                    log.warning("no result yet after %.0fs: is an `rcetl worker --queue %s` running against "
                                "this broker?", waited, self.queue)
                time.sleep(POLL_SECONDS)
        except BaseException:
            # Interrupted (or the broker went away): take back what no worker started yet.
            session.stop_event.set()
            for _, ar in pending.values():
                try:
                    ar.revoke()
                except Exception:  # noqa: BLE001 - best effort; the run is ending anyway
                    pass
            raise
        finally:
            if not pending:
                remote.settle()  # every task answered: the ledger is complete
            session.report_remote_requests(remote.requests, remote.throttled)
            try:
                app.close()
            except Exception:  # noqa: BLE001
                pass
        return results

    @staticmethod
    def _result(task: StreamTask, ar: Any) -> TaskResult:
        from ..engine.tasks import TaskResult

        try:
            data = ar.get(propagate=False, disable_sync_subtasks=False)
        except Exception as exc:  # noqa: BLE001 - the result backend failed: report the task failed
            return TaskResult(task, "failed", error=f"{task.label}: result lost: {type(exc).__name__}: {exc}")
        finally:
            try:
                ar.forget()
            except Exception:  # noqa: BLE001 - rpc:// results need no clean-up
                pass
        if isinstance(data, dict) and "task" in data:
            return TaskResult.from_json(data)
        return TaskResult(task, "failed", error=f"{task.label}: worker raised {type(data).__name__}: {data}")


def _merge(stats: RunStats, result: TaskResult) -> None:
    """Add a worker's per-task counters to the run's counters (as local tasks do as they go)."""
    from ..run import SinkStats, StreamStats

    stream_fields = {f.name for f in fields(StreamStats)}
    sink_fields = {f.name for f in fields(SinkStats)}
    for stream, counts in (result.extra.get("streams") or {}).items():
        stats.add(stream, **{k: int(v) for k, v in counts.items() if k in stream_fields and v})
    for sink, counts in (result.extra.get("sinks") or {}).items():
        stats.add_sink(sink, **{k: int(v) for k, v in counts.items() if k in sink_fields and v})
    if "changed" in result.extra and hasattr(stats, "add_changed"):
        stats.add_changed(result.extra["changed"])
    errors = result.extra.get("errors")
    if errors is None and result.error:  # a result from a worker that sends no counters
        errors = [result.error]
    for error in errors or []:
        stats.error(error)


#: Key prefix of run ledgers in the budgets' Redis (see rcetl.budget.tally.RunLedger).
LEDGER_PREFIX = "rcetl"


def _run_ledger(session: RunSession) -> tuple[Any, str] | None:
    """The run's request ledger in the budgets' Redis (a Celery pipeline always has one)."""
    budgets = session.pipeline.budgets
    if budgets.backend != "redis":
        return None
    from ..budget.tally import RunLedger

    url = budgets.url or "redis://127.0.0.1:6379/0"
    try:
        return RunLedger.from_url(url, LEDGER_PREFIX, session.run.run_id), url
    except Exception as exc:  # noqa: BLE001 - the summary falls back to what the tasks reported
        log.warning("run ledger unavailable (%s): request counts come from task results", exc)
        return None


def _any_started(pending: Any) -> bool:
    """Whether a worker has taken any of the outstanding tasks (``task_track_started`` is on)."""
    for _task, ar in pending:
        try:
            if ar.state != "PENDING":
                return True
        except Exception:  # noqa: BLE001 - a backend hiccup: assume nothing started, and warn
            return False
    return False


class _RemoteRequests:
    """Requests the workers sent, shown in the run summary beside the submitter's own.

    While the run goes, the counts each task reports (its own requests only) add up for progress.
    At the end the run's ledger replaces them: it holds every request every worker sent for this
    run as it was sent, also those of a worker that died before it could report (its task was
    handed back and redone, and the server counted both attempts)."""

    def __init__(self, ledger: tuple[Any, str] | None = None) -> None:
        self.requests: dict[str, dict[str, int]] = {}
        self.throttled: dict[str, int] = {}
        self.ledger: Any = ledger[0] if ledger is not None else None
        self.ledger_url: str = ledger[1] if ledger is not None else ""

    def settle(self) -> None:
        """Take the exact totals from the ledger (then forget it)."""
        if self.ledger is None:
            return
        try:
            tally = self.ledger.read()
            self.ledger.forget()
        except Exception as exc:  # noqa: BLE001 - keep the reported counts
            log.warning("run ledger unreadable (%s): request counts come from task results", exc)
            return
        self.requests = tally.requests()
        self.throttled = tally.throttled()
        for cred in self.throttled:
            self.requests.setdefault(cred, {})

    def add(self, result: TaskResult) -> None:
        for cred, groups in (result.extra.get("requests") or {}).items():
            mine = self.requests.setdefault(cred, {})
            for group, n in groups.items():
                mine[group] = mine.get(group, 0) + int(n)
        for cred, n in (result.extra.get("throttled") or {}).items():
            self.throttled[cred] = self.throttled.get(cred, 0) + int(n)
            self.requests.setdefault(cred, {})
