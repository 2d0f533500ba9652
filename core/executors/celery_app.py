"""The Celery side of rcetl: the app both the submitting command and the workers build, and the
one task a worker runs (``rcetl.run_task``).

A task message carries everything a worker on another machine needs to run exactly the pipeline
the user submitted: the pipeline file's path, its SHA-256 and its text (not interpolated: secrets
stay in each machine's environment, invariant 6), the run id, the run window, the selected streams
and the :class:`~rcetl.engine.tasks.StreamTask`. The worker keeps one
:class:`~rcetl.engine.opened.OpenedPipeline` per (pipeline file, content hash) per process, so sinks
and connections (and their token and budget handles) are opened once, not once per task; each task
runs in its own :class:`~rcetl.engine.session.RunSession` on it (its run id, window, streams and
counters), and its counters go back to the submitter in the task's result.

Delivery is at-least-once: a message is acknowledged only after its task returns
(``task_acks_late``), a task whose worker dies is given back to the broker
(``task_reject_on_worker_lost``) and a worker holds no more messages than it works on
(``worker_prefetch_multiplier=1``), so another worker redoes a lost worker's task. Redoing is
safe because tasks are idempotent: they resume from the last checkpoint and sinks upsert.

Run a worker with ``rcetl worker`` or ``celery -A rcetl.executors.celery_app worker`` (the latter
reads ``RCETL_BROKER_URL``, ``RCETL_RESULT_BACKEND`` and ``RCETL_QUEUE``).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import hashlib
import logging
import os
import tempfile
import threading
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery import Celery

from ..stopping import StopSignal

if TYPE_CHECKING:
    from ..engine.opened import OpenedPipeline
    from ..interfaces import RunWindow
    from ..run import RunStats

log = logging.getLogger("rcetl.worker")

TASK_NAME = "rcetl.run_task"
MESSAGE_VERSION = 1
DEFAULT_QUEUE = "rcetl"
#: A Redis broker hands an unacknowledged message to another worker only after this many seconds;
#: it must exceed the longest task (RabbitMQ redelivers as soon as the worker's connection drops).
REDIS_VISIBILITY_TIMEOUT = 6 * 3600


def default_backend(broker: str) -> str:
    """Where results go when the pipeline names no backend: the broker's Redis, or RabbitMQ RPC."""
    return broker if broker.startswith(("redis://", "rediss://")) else "rpc://"


def make_app(broker: str, backend: str | None = None, queue: str = DEFAULT_QUEUE) -> Celery:
    app = Celery("rcetl", broker=broker, backend=backend or default_backend(broker), set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=queue,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        result_expires=7 * 24 * 3600,
        result_extended=True,
        task_track_started=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": REDIS_VISIBILITY_TIMEOUT},
        worker_hijack_root_logger=False,
        worker_send_task_events=True,
        task_send_sent_event=True,
    )
    app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True)(run_task_message)
    return app


# --- the message ----------------------------------------------------------------------------------


def pipeline_digest(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()


def window_to_json(window: RunWindow) -> dict[str, Any]:
    return {"since": window.since.isoformat() if window.since else None,
            "until": window.until.isoformat() if window.until else None,
            "full_refresh": bool(window.full_refresh)}


def window_from_json(data: dict[str, Any]) -> RunWindow:
    from ..interfaces import RunWindow

    def moment(v: str | None) -> datetime | None:
        return datetime.fromisoformat(v) if v else None

    return RunWindow(since=moment(data.get("since")), until=moment(data.get("until")),
                     full_refresh=bool(data.get("full_refresh")))


def build_message(pipeline_file: Path, text: bytes, run_id: str, window: RunWindow,
                  streams: set[str] | None, task_json: dict[str, str]) -> dict[str, Any]:
    return {
        "v": MESSAGE_VERSION,
        "pipeline": {"path": str(Path(pipeline_file).resolve()), "sha256": pipeline_digest(text),
                     "text": text.decode("utf-8")},
        "run_id": run_id,
        "window": window_to_json(window),
        "streams": sorted(streams) if streams is not None else None,
        "task": task_json,
    }


# --- the worker side ------------------------------------------------------------------------------

_opened: dict[tuple[str, str], OpenedPipeline] = {}
_opened_lock = threading.Lock()
_stacks: list[contextlib.ExitStack] = []


def _pipeline_path(path: str, digest: str, text: str) -> Path:
    """The submitted file itself when this machine has it unchanged (so relative paths resolve as
    on the submitting machine); else a private copy of the submitted text, named by its hash."""
    p = Path(path)
    with contextlib.suppress(OSError):
        if p.is_file() and pipeline_digest(p.read_bytes()) == digest:
            return p
    root = Path(os.environ.get("RCETL_WORKER_DIR") or Path(tempfile.gettempdir()) / f"rcetl-worker-{os.getuid()}")
    folder = root / "pipelines" / digest[:32]
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    copy_path = folder / (p.name or "pipeline.yaml")
    if not copy_path.is_file() or pipeline_digest(copy_path.read_bytes()) != digest:
        tmp = folder / f".{copy_path.name}.{os.getpid()}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(copy_path)
    return copy_path


def opened_pipeline(path: str, digest: str, text: str) -> OpenedPipeline:
    """This process's opened pipeline for the file (opened on first use, closed at exit)."""
    key = (path, digest)
    with _opened_lock:
        opened = _opened.get(key)
        if opened is not None:
            return opened
        from ..config import load_pipeline
        from ..engine.opened import OpenedPipeline
        from ..registry import get_plugin_manager
        from ..run import RunInfo

        pm = get_plugin_manager()
        pipeline = load_pipeline(_pipeline_path(path, digest, text), pm=pm)
        run = RunInfo(f"worker-{os.getpid()}", pipeline.name, path, 0.0, executor="celery",
                      observers=pipeline.observers, output_dir=str(pipeline.spool_dir.parent))
        stack = contextlib.ExitStack()
        opened = stack.enter_context(OpenedPipeline(pipeline, pm, run=run))
        _stacks.append(stack)
        _opened[key] = opened
        log.info("opened pipeline %s (%s) in worker process %d", pipeline.name, digest[:12], os.getpid())
        return opened


def preload_pipelines(files: list[Path]) -> None:
    """Open these pipeline files now (``rcetl worker --preload``): a run's first
    tasks then start at once instead of waiting for sinks, state and plugins to open (measured:
    3-13 s on a loaded two-core machine, the largest part of a short scaled-out run's overhead).
    The key is the file's resolved path and content hash, as the submitter sends them."""
    for file in files:
        text = Path(file).read_bytes()
        opened_pipeline(str(Path(file).resolve()), pipeline_digest(text), text.decode("utf-8"))


def close_pipelines() -> None:
    with _opened_lock:
        while _stacks:
            _stacks.pop().close()
        _opened.clear()


atexit.register(close_pipelines)


def _ledger(message: dict[str, Any]) -> Any:
    """The run's request ledger in Redis, if the submitter named one (see :mod:`rcetl.budget.tally`)."""
    spec = message.get("ledger")
    if not spec:
        return None
    from ..budget.tally import RunLedger

    return RunLedger.from_url(spec["url"], spec.get("prefix") or "rcetl", message["run_id"])


def _run_in_session(message: dict[str, Any], task: Any, stats: RunStats) -> Any:
    """Run the task in a session of its own on this process's opened pipeline: the task's run id,
    window, stream selection and counters; the plugins, state and budgets are the opened pipeline's
    (tasks of several runs share a worker)."""
    from ..budget.tally import counting
    from ..engine.session import RunSession
    from ..engine.tasks import TaskResult

    spec = message["pipeline"]
    opened = opened_pipeline(spec["path"], spec["sha256"], spec["text"])
    streams = set(message["streams"]) if message.get("streams") is not None else None
    # No blob ledger on workers, as before the engine was split (a worker downloads every binary it
    # is sent); the submitting process consults it for its own retries.
    session = RunSession(opened, run=dataclasses.replace(opened.run, run_id=message["run_id"]),
                         window=window_from_json(message.get("window") or {}), streams=streams, stats=stats,
                         stop=StopSignal(), reuse_binaries=False)
    if (task.connection, task.source, task.stream) not in session.streams:
        return TaskResult(task, "failed", error=f"{task.label}: no such stream in the pipeline on this worker")
    session.track_failed()  # items still in the failed-item queue are resolved when archived again
    with counting(_CredentialNames(opened, task.connection)):
        return session.run_task(task)


_named: dict[str, str] = {}  # credential -> label this process published
_named_lock = threading.Lock()


class _CredentialNames:
    """A tally that publishes, on a task's first request with a credential, which connection (and
    account, once the connection knows it) the credential id is: `rcetl workers status` shows names,
    not only hashes."""

    def __init__(self, opened: OpenedPipeline, connection: str) -> None:
        self._opened = opened
        self._connection = connection

    def label(self) -> str:
        conn = self._opened.connections.get(self._connection)
        describe = getattr(conn, "describe", None)
        detail = describe() if callable(describe) else ""
        return f"{self._opened.pipeline.name}/{self._connection}" + (f" ({detail})" if detail else "")

    def note(self, credential: str, group: str, *, sent: int = 0, throttled: int = 0) -> None:
        provider = getattr(self._opened.budgets, "inner", None)
        publish = getattr(provider, "name_credential", None)
        if publish is None:
            return
        label = self.label()
        with _named_lock:
            if _named.get(credential) == label:
                return
            _named[credential] = label
        try:
            publish(credential, label)
        except Exception as exc:  # noqa: BLE001 - names are a convenience; the task goes on
            log.debug("could not publish the name of credential %s: %s", credential[:10], exc)


def run_task_message(message: dict[str, Any]) -> dict[str, Any]:
    """Run one task of a run on this worker; returns ``TaskResult.to_json()`` with the task's
    per-stream and per-sink counters in ``extra`` (the submitting command adds them to its run)."""
    from ..engine.tasks import StreamTask, TaskResult
    from ..run import RunStats
    from ..secrets import redact

    task = StreamTask.from_json(message["task"])
    if message.get("v") != MESSAGE_VERSION:
        return TaskResult(task, "failed", error=f"{task.label}: message version {message.get('v')!r} is not "
                          f"{MESSAGE_VERSION}: run the same rcetl version on workers and submitters").to_json()
    from ..budget.tally import RequestTally, counting

    stats = RunStats()
    started = time.time()
    # Requests are counted for this task as they are sent (not as differences of the process's
    # budget counters, which every task of every run on this worker shares) and in the run's
    # ledger, which keeps them even if this worker dies before it can answer.
    task_tally = RequestTally()
    ledger = None
    try:
        ledger = _ledger(message)
    except Exception as exc:  # noqa: BLE001 - the task still runs; its own counts still reach the submitter
        log.warning("run ledger unavailable: %s", redact(str(exc)))
    tallies = (task_tally, ledger) if ledger is not None else (task_tally,)
    try:
        with counting(*tallies):
            result = _run_in_session(message, task, stats)
    except Exception as exc:  # noqa: BLE001 - a result the submitter can print, not a traceback in a log
        log.exception("task %s could not run", task.label)
        result = TaskResult(task, "failed", error=f"{task.label}: {type(exc).__name__}: {redact(str(exc))}")
        stats.error(result.error or "")
    streams_stats, sink_stats = stats.snapshot()
    requests, throttled = task_tally.requests(), task_tally.throttled()
    result.extra.update({
        "streams": {k: asdict(v) for k, v in streams_stats.items()},
        "sinks": {k: asdict(v) for k, v in sink_stats.items()},
        "errors": list(stats.errors),
        # records the sinks reported new or changed (None: a sink could not tell), where RunStats keeps it
        "changed": getattr(stats, "changed", 0),
        "requests": requests,
        "started_at": started,
        "seconds": round(time.time() - started, 3),
        "throttled": throttled,
    })
    return result.to_json()


def _app_from_env() -> Celery:
    broker = os.environ.get("RCETL_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    return make_app(broker, os.environ.get("RCETL_RESULT_BACKEND") or None,
                    os.environ.get("RCETL_QUEUE") or DEFAULT_QUEUE)


def __getattr__(name: str) -> Any:
    # `celery -A rcetl.executors.celery_app worker` looks up `app` (or `celery`); build it lazily so
    # importing this module for the submitting side reads no environment.
    if name in ("app", "celery"):
        global _env_app
        if _env_app is None:
            _env_app = _app_from_env()
        return _env_app
    raise AttributeError(name)


_env_app: Celery | None = None
