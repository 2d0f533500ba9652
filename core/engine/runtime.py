"""The engine: opens a pipeline's plugins, cuts the work into tasks, and archives each task.

``Engine`` is a context manager so that every connection, source and sink is closed whatever
happens. Executors call :meth:`Engine.run_task`; the local executor does it in threads of this
process, the Celery executor in worker processes that open their own ``Engine`` on the same
pipeline file. Checkpoints are committed only after a batch is durably stored (invariant 1).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import queue
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..budget import Budget, BudgetProvider, GroupLimit
from ..config.model import Pipeline
from ..context import RunContext
from ..coordination import Coordinator, FileCoordinator
from ..errors import RcetlError
from ..executors.pools import PoolPerCredential, threads_from_budget
from ..interfaces import BlobSink, RecordSink, RunWindow, Sink, Source, Stream, StreamPlan
from ..records import ArchivedRecord, Checkpoint, Record
from ..registry import PluginManager
from ..run import RunInfo, RunStats
from ..secrets import redact
from ..stopping import RunStopped, StopSignal, attach
from .archiver import BatchArchiver, Routed
from .ledger import BlobLedger
from .spool import prepare_spool_dir
from .tasks import StreamTask, TaskResult

log = logging.getLogger("rcetl.engine")


class _ObservedBudgets(BudgetProvider):
    """Wraps the run's budget provider to tell observers when a budget makes a request wait."""

    def __init__(self, inner: BudgetProvider, engine: Engine) -> None:
        self.inner = inner
        self.engine = engine
        self.created: dict[str, Budget] = {}

    def budget(self, credential: str, defaults: dict[str, GroupLimit]) -> Budget:
        b = self.inner.budget(credential, defaults)
        if credential not in self.created:
            self.created[credential] = b
            b.on_wait = lambda group, seconds, c=credential: self.engine.pm.budget_exhausted(
                self.engine.run, c, group, seconds)
            if self.engine.stop_event.is_set():
                _cancel(b)
        return b

    def cancel(self) -> None:
        """End every wait for a budget now (the run is stopping)."""
        for b in list(self.created.values()):
            _cancel(b)


def _cancel(budget: Budget) -> None:
    cancel = getattr(budget, "cancel", None)  # a third-party backend may not have it: it then waits
    if cancel is not None:
        cancel("the run is stopping")


def make_budget_provider(pipeline: Pipeline, *, persist: bool = True) -> BudgetProvider:
    if pipeline.budgets.backend == "redis":
        from ..budget.redis import RedisBudgetProvider

        return RedisBudgetProvider(pipeline.budgets.url or "redis://127.0.0.1:6379/0")
    if persist:
        # The windows live in the state store, so a restarted run resumes pacing (docs/budgets.md).
        from ..budget.persisted import JournalledBudgetProvider

        return JournalledBudgetProvider(pipeline.state_url)
    from ..budget.memory import MemoryBudgetProvider

    return MemoryBudgetProvider()


def make_coordinator(pipeline: Pipeline) -> Coordinator:
    if pipeline.budgets.backend == "redis":
        from ..coordination_redis import RedisCoordinator

        # Not per pipeline: two pipelines sharing a credential must share its one token (invariant 3).
        return RedisCoordinator(pipeline.budgets.url or "redis://127.0.0.1:6379/0", prefix="rcetl")
    home = Path(os.environ.get("RCETL_HOME", "~/.rcetl")).expanduser()
    return FileCoordinator(home / "coordination")


class Engine:
    def __init__(
        self,
        pipeline: Pipeline,
        pm: PluginManager,
        *,
        window: RunWindow | None = None,
        streams: set[str] | None = None,
        run: RunInfo | None = None,
        stats: RunStats | None = None,
        dry_run: bool = False,
        retry_now: bool = False,
        redownload: bool = False,
    ) -> None:
        self.pipeline = pipeline
        self.pm = pm
        self.window = window or RunWindow()
        self.selected = streams
        self.dry_run = dry_run
        # retry every queued failed item in this run, whatever its backoff says
        self.retry_now = retry_now
        # download every binary again, even those every sink holds with the recorded checksum
        self.redownload = redownload
        self.run = run or RunInfo(uuid.uuid4().hex, pipeline.name, str(pipeline.file), time.time(),
                                  observers=pipeline.observers)
        self.stats = stats or RunStats()
        # Set by an executor on Ctrl-C/SIGTERM: every wait of the run (budgets, backoff sleeps,
        # transfers) watches it, so a stopping run ends in moments (rcetl.stopping).
        self.stop_event = StopSignal()
        self._stack = contextlib.ExitStack()
        self.connections: dict[str, Any] = {}
        self.sources: dict[tuple[str, str], Source] = {}
        self.streams: dict[tuple[str, str, str], Stream] = {}
        self.sinks: dict[str, Sink] = {}
        self.state: Any = None
        self.budgets: _ObservedBudgets | None = None
        self._failed_keys: dict[str, set[tuple[str, str]]] = {}
        self._failed_lock = threading.Lock()

    # --- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> Engine:
        try:
            self._open()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _open(self) -> None:
        p = self.pipeline
        from ..state import StateStore

        # A dry run writes nothing: no state database, spool folder or lock files are created.
        self.state = _NoState() if self.dry_run and not state_exists(p.state_url) else \
            StateStore(p.state_url)
        self._stack.callback(lambda: getattr(self.state, "close", lambda: None)())
        self.spool_dir = p.spool_dir / f"{os.getpid()}-{self.run.run_id[:8]}"
        if not self.dry_run:
            prepare_spool_dir(p.spool_dir)
            self.spool_dir.mkdir(mode=0o700, exist_ok=True)
            self._stack.callback(shutil.rmtree, self.spool_dir, True)
        provider = make_budget_provider(p, persist=not self.dry_run)  # a dry run sends nothing
        self._stack.callback(getattr(provider, "close", lambda: None))
        self.budgets = _ObservedBudgets(provider, self)
        self.ctx = RunContext(
            pipeline=p.name,
            budgets=self.budgets,
            coordinator=_MemoryCoordinator() if self.dry_run else make_coordinator(p),
            spool_dir=self.spool_dir,
            base_dir=p.base_dir,
            logger=logging.getLogger(f"rcetl.run.{p.name}"),
            embedded_servers=self.pm.embedded_servers(),
        )
        attach(self.ctx, self.stop_event)
        self.stop_event.on_stop(self.budgets.cancel)
        for conn in p.connections:
            obj = conn.spec.factory(conn.name, conn.config, self.ctx)
            self.connections[conn.name] = obj
            self._stack.callback(_close_quietly, obj, f"connection {conn.name!r}")
        for src in p.sources:
            for conn_name in src.connections:
                source = src.spec.factory(src.config, self.ctx, self.connections[conn_name])
                self.sources[(conn_name, src.name)] = source
                self._stack.callback(_close_quietly, source, f"source {src.name!r}")
                for stream in source.streams():
                    if self.selected is None or stream.name in self.selected:
                        self.streams[(conn_name, src.name, stream.name)] = stream
        if self.dry_run:
            return
        for sink_conf in p.sinks:
            sink = sink_conf.build(self.ctx)
            sink.open()
            self.sinks[sink_conf.name] = sink
            self._stack.callback(_close_quietly, sink, f"sink {sink_conf.name!r}")
        # A pool per connection (credential): one account waiting for its budget never holds a
        # download thread another account could use (docs/scale-out.md, "Sizing").
        # Sized from the credential's budget unless the pipeline sets `downloads` (docs/scale-out.md).
        auto = "downloads" not in p.executor.model_fields_set
        self.pool = PoolPerCredential(p.executor.downloads, thread_name_prefix="rcetl-blob",
                                      sizer=(lambda conn: threads_from_budget(self, conn)) if auto else None)
        self._stack.callback(self.pool.shutdown, True, cancel_futures=True)
        ledger = BlobLedger(p.state_url, p.name)
        self._stack.callback(ledger.close)
        self.archiver = BatchArchiver(self.spool_dir, self.pool, self.stats, self._archived,
                                      ledger=ledger, redownload=self.redownload)

    # --- planning ----------------------------------------------------------------------------

    def _parent_present(self, conn: str, stream: Stream) -> bool:
        return stream.parent is not None and any(
            c == conn and s == stream.parent for (c, _, s) in self.streams)

    def tasks(self) -> list[StreamTask]:
        """Every task of this run; child streams ride along with their parent's tasks."""
        out = []
        for (conn, src, name), stream in self.streams.items():
            if self._parent_present(conn, stream):
                continue
            for partition in stream.partitions():
                out.append(StreamTask(conn, src, name, partition))
        return out

    def plan(self) -> list[StreamPlan]:
        """A dry-run estimate per stream; makes no request (sources estimate from checkpoints)."""
        plans = []
        for (conn, src, name), stream in self.streams.items():
            checkpoint = None if self.window.full_refresh else \
                self.state.get_checkpoint(self.pipeline.name, _source_id(src, conn), name, "")
            plan = stream.plan("", checkpoint, self.window)
            if len(self.connections) > 1:
                plan.stream = f"{plan.stream}@{conn}"
            plans.append(plan)
        return plans

    # --- work ----------------------------------------------------------------------------------

    def _route(self, record: Record, stream: Stream, conn: str, src: str) -> Routed:
        p = self.pipeline
        return Routed(
            record=record,
            stream=stream,
            origin={"connection": conn, "source": src},
            record_sinks=[(s.name, sink) for s in p.record_sinks_for(record.stream)
                          if isinstance(sink := self.sinks[s.name], RecordSink)],
            blob_sinks=[(s.name, blob_sink) for s in p.blob_sinks_for(record.stream)
                        if isinstance(blob_sink := self.sinks[s.name], BlobSink)] if record.blobs else [],
        )

    def _children(self, conn: str, parent: str) -> list[tuple[str, Stream]]:
        return [(src, s) for (c, src, _), s in self.streams.items() if c == conn and s.parent == parent]

    def run_task(self, task: StreamTask) -> TaskResult:
        stream = self.streams[(task.connection, task.source, task.stream)]
        source_id = _source_id(task.source, task.connection)
        name = self.pipeline.name
        checkpoint = None if self.window.full_refresh else \
            self.state.get_checkpoint(name, source_id, task.stream, task.partition)
        children = self._children(task.connection, task.stream)
        batch: list[Routed] = []
        result = TaskResult(task, "ok", worker=f"{socket.gethostname()}:{os.getpid()}")
        batch_size = self.pipeline.executor.batch_size

        def flush() -> bool:
            """Archive the batch; False when the run stopped before all of it was archived."""
            res = self.archiver.archive(batch)
            result.records += len(res.archived)
            result.failed += len(res.failed)
            for routed, error in res.failed:
                self._queue_failed(routed, error)
            batch.clear()
            return not res.stopped

        try:
            for item in self._read_ahead(task, stream, checkpoint, children, depth=2 * batch_size):
                if isinstance(item, Checkpoint):
                    if not flush():
                        # Items were cut short by the stop: the checkpoint stays before them.
                        result.status = "stopped"
                        return result
                    self.state.put_checkpoint(name, source_id, task.stream, item.partition or task.partition,
                                              item.value)
                    if self.stop_event.is_set():
                        result.status = "stopped"
                        return result
                    continue
                batch.append(item)
                if len(batch) >= batch_size:
                    flush()
                if self.stop_event.is_set():
                    flush()  # what was read is stored; the checkpoint stays where it was
                    result.status = "stopped"
                    return result
            flush()
        except RunStopped:
            result.status = "stopped"  # a wait ended by the stop; the checkpoint stays where it was
            return result
        except RcetlError as exc:
            if self.stop_event.is_set() and isinstance(exc.__cause__, RunStopped):
                result.status = "stopped"
                return result
            result.status, result.error = "failed", f"{task.label}: {redact(str(exc))}"
        except Exception as exc:  # noqa: BLE001 - report the task as failed, keep other tasks going
            log.exception("task %s crashed", task.label)
            result.status, result.error = "failed", f"{task.label}: {type(exc).__name__}: {redact(str(exc))}"
        if result.error:
            self.stats.error(result.error)
        return result

    def _read_ahead(self, task: StreamTask, stream: Stream, checkpoint: Any,
                    children: list[tuple[str, Stream]], depth: int) -> Iterator[Routed | Checkpoint]:
        """The task's items, read by a thread up to ``depth`` items ahead of the batch being written.

        While one batch's records are written, the next pages are read and their binaries already
        downloading, so neither the rate budget nor the sinks wait for the other. Order is kept:
        items, and the checkpoints between them, arrive exactly as the stream yields them.
        """
        ahead: queue.Queue[Any] = queue.Queue(maxsize=max(depth, 1))
        stop = threading.Event()

        def put(entry: Any) -> bool:
            while not stop.is_set():
                try:
                    ahead.put(entry, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for item in stream.read(task.partition, checkpoint, self.window):
                    if isinstance(item, Checkpoint):
                        if not put(item):
                            return
                        continue
                    routed = [self._route(item, stream, task.connection, task.source)]
                    for child_src, child in children:
                        routed += [self._route(d, child, task.connection, child_src) for d in child.derive(item)]
                    for entry in routed:
                        if not put(self.archiver.start(entry)):
                            return
                    if self.stop_event.is_set():
                        break
                put(_END)
            except BaseException as exc:  # noqa: BLE001 - handed to the writer, which raises it
                put(_Raised(exc))

        # In the task's context: requests are counted for the task that sent them (rcetl.budget.tally).
        reader = threading.Thread(target=contextvars.copy_context().run, args=(produce,),
                                  name=f"rcetl-read-{task.label}", daemon=True)
        reader.start()
        try:
            while True:
                entry = ahead.get()
                if entry is _END:
                    return
                if isinstance(entry, _Raised):
                    raise entry.exc
                yield entry
        finally:
            stop.set()

    # --- failed items --------------------------------------------------------------------------

    def _queue_failed(self, routed: Routed, error: str) -> None:
        rec = routed.record
        self.state.add_failed(self.pipeline.name, rec.stream, rec.account, rec.key,
                              {"record": rec.to_json(), **routed.origin}, error)
        log.warning("queued for retry: %s %r: %s", rec.stream, rec.key, error)
        self.pm.item_failed(self.run, rec, error)

    def _archived(self, item: ArchivedRecord) -> None:
        keys = self._failed_keys.get(item.stream)
        if keys and (item.record.account, repr(item.key)) in keys:
            with self._failed_lock:
                keys.discard((item.record.account, repr(item.key)))
            self.state.resolve_failed(self.pipeline.name, item.stream, item.record.account, item.key)
            self.stats.add(item.stream, retried=1)
        self.pm.item_archived(self.run, item)

    def retry_failed(self) -> int:
        """Archive the due items of the failed-item queue again; returns how many are still failing."""
        still = 0
        names = {s for (_, _, s) in self.streams}
        for stream_name in sorted(names):
            every = self.state.due_failed(self.pipeline.name, stream_name, include_not_due=True)
            items = every if self.retry_now else self.state.due_failed(self.pipeline.name, stream_name)
            self._failed_keys[stream_name] = {(i.account, repr(i.key)) for i in every}
            batch = []
            for item in items:
                origin = item.record
                stream = self.streams.get((origin.get("connection", ""), origin.get("source", ""), stream_name))
                if stream is None:
                    continue
                record = Record.from_json(origin["record"])
                routed = self._route(record, stream, origin["connection"], origin["source"])
                routed.redownload = True  # queued because its binary failed or its stored bytes were bad
                batch.append(routed)
            for start in range(0, len(batch), self.pipeline.executor.batch_size):
                if self.stop_event.is_set():
                    return still  # the rest stays queued as it was
                chunk = batch[start:start + self.pipeline.executor.batch_size]
                res = self.archiver.archive(chunk)
                for routed, error in res.failed:
                    self._queue_failed(routed, error)
                    still += 1
        return still

    def failed_count(self) -> int:
        return self.state.count_failed(self.pipeline.name)

    def budget_report(self) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
        requests: dict[str, dict[str, int]] = {}
        throttled: dict[str, int] = {}
        for cred, budget in (self.budgets.created.items() if self.budgets else []):
            snap = budget.snapshot()
            requests[cred] = {g: s.sent for g, s in snap.items()}
            throttled[cred] = sum(s.throttled for s in snap.values())
        return requests, throttled


class _NoState:
    """The state of a pipeline that never ran, for a dry run (which must not create the database)."""

    def get_checkpoint(self, *args: Any, **kwargs: Any) -> None:
        return None

    def close(self) -> None:
        pass


def state_exists(url: str) -> bool:
    """False only for a SQLite state file that does not exist yet (other databases are servers)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return True
    return Path(parsed.database).exists()


class _MemoryCoordinator(Coordinator):
    """Locks and values in this process only: what a dry run needs, without lock files on disk."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._values: dict[str, dict[str, Any]] = {}
        self._guard = threading.Lock()

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float = 60.0) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        if not lock.acquire(timeout=timeout):
            raise TimeoutError(f"lock {name!r} not acquired in {timeout}s")
        try:
            yield
        finally:
            lock.release()

    def get(self, name: str) -> dict[str, Any] | None:
        with self._guard:
            return self._values.get(name)

    def put(self, name: str, value: dict[str, Any]) -> None:
        with self._guard:
            self._values[name] = dict(value)


_END = object()


@dataclass
class _Raised:
    exc: BaseException


def _source_id(source: str, connection: str) -> str:
    return f"{source}@{connection}"


def _close_quietly(obj: Any, what: str) -> None:
    try:
        close = getattr(obj, "close", None)
        if close:
            close()
    except Exception as exc:  # noqa: BLE001 - closing must not hide the real error
        log.warning("closing %s failed: %s", what, redact(str(exc)))
