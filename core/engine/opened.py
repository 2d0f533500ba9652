"""An opened pipeline: every plugin of a pipeline file, opened once and closed together.

:class:`OpenedPipeline` holds what lives as long as the process uses the pipeline: the state
store, the budgets and coordinator, the :class:`~rcetl.RunContext` plugins share, connections,
sources and their streams, sinks, the blob ledger and the download pools. ``rcetl run`` opens one
for its run, ``rcetl verify`` and ``rcetl purge`` open one to compare and delete, and a Celery
worker opens one per pipeline file and runs every task it is sent on it. What belongs to one run
(its window, counters, failed items, observers) is a :class:`~rcetl.engine.session.RunSession`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..budget import Budget, BudgetProvider, GroupLimit
from ..config.model import Pipeline
from ..context import RunContext
from ..coordination import Coordinator, FileCoordinator
from ..executors.pools import PoolPerCredential, threads_from_budget
from ..interfaces import BlobSink, RecordSink, RunWindow, Sink, Source, Stream, StreamPlan
from ..records import Record
from ..registry import PluginManager
from ..run import RunInfo
from ..secrets import redact
from ..stopping import StopSignal, attach
from .archiver import Routed
from .ledger import BlobLedger
from .spool import prepare_spool_dir
from .tasks import StreamTask

log = logging.getLogger("rcetl.engine")

#: The key of a stream in an opened pipeline: (connection, source, stream).
StreamKey = tuple[str, str, str]


class ObservedBudgets(BudgetProvider):
    """The pipeline's budget provider, remembering each credential's budget (read by progress and
    run summaries) and telling ``on_wait`` when a budget makes a request wait."""

    def __init__(self, inner: BudgetProvider, on_wait: Callable[[str, str, float], None],
                 stop: StopSignal) -> None:
        self.inner = inner
        self._on_wait = on_wait
        self._stop = stop
        self.created: dict[str, Budget] = {}

    def budget(self, credential: str, defaults: dict[str, GroupLimit]) -> Budget:
        b = self.inner.budget(credential, defaults)
        if credential not in self.created:
            self.created[credential] = b
            b.on_wait = lambda group, seconds, c=credential: self._on_wait(c, group, seconds)
            if self._stop.is_set():
                _cancel(b)
        return b

    def cancel(self) -> None:
        """End every wait for a budget now (the pipeline is stopping)."""
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


class OpenedPipeline:
    """Every plugin of ``pipeline`` opened (a context manager: all is closed when the block ends).

    ``run`` names whose observers hear of budget waits and names the spool folder: the run itself
    for ``rcetl run``, the worker process for a Celery worker. A ``dry_run`` opens connections and
    sources only (no state database, spool folder, sink or lock file is created) and sends nothing
    unless ``persist_budgets`` (``rcetl run --dry-run --count`` reads listings on the real budget).
    """

    def __init__(self, pipeline: Pipeline, pm: PluginManager, *, run: RunInfo | None = None,
                 dry_run: bool = False, persist_budgets: bool | None = None) -> None:
        self.pipeline = pipeline
        self.pm = pm
        self.run = run or RunInfo(uuid.uuid4().hex, pipeline.name, str(pipeline.file), time.time(),
                                  observers=pipeline.observers)
        self.dry_run = dry_run
        self._persist_budgets = not dry_run if persist_budgets is None else persist_budgets
        # Set on Ctrl-C/SIGTERM: plugins' waits (budgets, backoff sleeps, transfers) watch it through
        # the RunContext, so a stopping process ends in moments (rcetl.stopping).
        self.stop = StopSignal()
        self._stack = contextlib.ExitStack()
        self.connections: dict[str, Any] = {}
        self.sources: dict[tuple[str, str], Source] = {}
        self.streams: dict[StreamKey, Stream] = {}
        self.sinks: dict[str, Sink] = {}
        self.state: Any = None
        self.budgets: ObservedBudgets | None = None
        self.ledger: BlobLedger | None = None
        self.pool: PoolPerCredential | None = None  # none in a dry run: nothing is downloaded

    # --- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> OpenedPipeline:
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
        provider = make_budget_provider(p, persist=self._persist_budgets)  # a dry run sends nothing
        self._stack.callback(getattr(provider, "close", lambda: None))
        self.budgets = ObservedBudgets(provider, self._budget_wait, self.stop)
        self.ctx = RunContext(
            pipeline=p.name,
            budgets=self.budgets,
            coordinator=MemoryCoordinator() if self.dry_run else make_coordinator(p),
            spool_dir=self.spool_dir,
            base_dir=p.base_dir,
            logger=logging.getLogger(f"rcetl.run.{p.name}"),
            embedded_servers=self.pm.embedded_servers(),
        )
        attach(self.ctx, self.stop)
        self.stop.on_stop(self.budgets.cancel)
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
        self.ledger = BlobLedger(p.state_url, p.name)
        self._stack.callback(self.ledger.close)

    def _budget_wait(self, credential: str, group: str, seconds: float) -> None:
        self.pm.budget_exhausted(self.run, credential, group, seconds)

    # --- what there is to read -----------------------------------------------------------------

    def select(self, names: set[str] | None) -> dict[StreamKey, Stream]:
        """The streams named (every stream for None), keyed by (connection, source, stream)."""
        return {k: s for k, s in self.streams.items() if names is None or k[2] in names}

    def children(self, conn: str, parent: str, names: set[str] | None = None) -> list[tuple[str, Stream]]:
        """(source, stream) of every selected stream derived from ``parent``'s records on ``conn``."""
        return [(src, s) for (c, src, _), s in self.select(names).items() if c == conn and s.parent == parent]

    def tasks(self, names: set[str] | None = None) -> list[StreamTask]:
        """Every task of the selected streams; child streams ride along with their parent's tasks."""
        selected = self.select(names)
        out = []
        for (conn, src, name), stream in selected.items():
            if stream.parent is not None and any(c == conn and s == stream.parent for (c, _, s) in selected):
                continue
            for partition in stream.partitions():
                out.append(StreamTask(conn, src, name, partition))
        return out

    def plan(self, window: RunWindow, names: set[str] | None = None) -> list[StreamPlan]:
        """A dry-run estimate per stream; makes no request (sources estimate from checkpoints)."""
        plans = []
        for (conn, src, name), stream in self.select(names).items():
            checkpoint = None if window.full_refresh else \
                self.state.get_checkpoint(self.pipeline.name, source_id(src, conn), name, "")
            plan = stream.plan("", checkpoint, window)
            if len(self.connections) > 1:
                plan.stream = f"{plan.stream}@{conn}"
            plans.append(plan)
        return plans

    def route(self, record: Record, stream: Stream, conn: str, src: str) -> Routed:
        """``record`` with its origin and the sinks the pipeline sends its stream to."""
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

    def failed_count(self) -> int:
        """Items in the pipeline's failed-item queue."""
        return self.state.count_failed(self.pipeline.name)


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


class MemoryCoordinator(Coordinator):
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


def source_id(source: str, connection: str) -> str:
    """The id checkpoints and failed items are kept under: a source on one connection."""
    return f"{source}@{connection}"


def _close_quietly(obj: Any, what: str) -> None:
    try:
        close = getattr(obj, "close", None)
        if close:
            close()
    except Exception as exc:  # noqa: BLE001 - closing must not hide the real error
        log.warning("closing %s failed: %s", what, redact(str(exc)))
