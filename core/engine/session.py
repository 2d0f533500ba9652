"""A run session: one run (or one Celery task of a run) on an opened pipeline.

:class:`RunSession` holds what belongs to a single run: its window and stream selection, its
:class:`~rcetl.run.RunInfo` (what observers hear about), its counters, the failed items it may
resolve, its batch archiver and its stop signal. The plugins it reads and writes through belong to
the :class:`~rcetl.engine.opened.OpenedPipeline` it runs on, which outlives it (a Celery worker
runs many sessions on one opened pipeline). Checkpoints are committed only after a batch is
durably stored (invariant 1).
"""

from __future__ import annotations

import collections
import contextvars
import dataclasses
import functools
import gc
import logging
import os
import queue
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..budget import GroupState
from ..errors import RcetlError
from ..interfaces import RunWindow, Stream
from ..records import ArchivedRecord, Checkpoint, Record
from ..run import RunInfo, RunStats
from ..secrets import redact
from ..stopping import RunStopped, StopSignal
from .archiver import BatchArchiver, Routed
from .opened import OpenedPipeline, source_id
from .tasks import StreamTask, TaskResult

log = logging.getLogger("rcetl.engine")

#: Records with binaries per batch (and read ahead), per download slot: 256 at the default 8
#: downloads. Such a record is held (with its download's future) until its batch is written, and the
#: downloads, not the batch's transaction, set the pace: 1,000 of them in each of the four batches
#: in memory cost 20-26 MB of peak RSS archiving recordings and no throughput (4,000 recordings into
#: a folder: 150 MB at 1,000, 124-130 MB at 100-250, the same wall).
BINARY_RECORDS_PER_DOWNLOAD = 32


class RunSession:
    """One run's work on ``opened``: reads each task's stream, archives its batches, commits its
    checkpoints, and counts what it did in ``stats``.

    ``stop`` is the run's stop signal (by default the opened pipeline's, which plugins watch);
    ``reuse_binaries`` consults the blob ledger so a binary every sink holds is not downloaded
    again (``redownload`` turns that off for the run)."""

    def __init__(self, opened: OpenedPipeline, *, run: RunInfo, window: RunWindow | None = None,
                 streams: set[str] | None = None, stats: RunStats | None = None, stop: StopSignal | None = None,
                 retry_now: bool = False, redownload: bool = False, reuse_binaries: bool = True) -> None:
        if opened.pool is None:
            raise ValueError("a pipeline opened for a dry run plans; it cannot run (it opened no sink)")
        self.opened = opened
        self.pipeline = opened.pipeline
        self.state = opened.state
        self.pm = opened.pm
        self.run = run
        self.window = window or RunWindow()
        self.selected = streams
        self.streams = opened.select(streams)
        self.stats = stats or RunStats()
        # Set by an executor on Ctrl-C/SIGTERM: every wait of the run watches it (rcetl.stopping).
        self.stop_event = stop or opened.stop
        # retry every queued failed item in this run, whatever its backoff says
        self.retry_now = retry_now
        _settle_gc()
        self.archiver = BatchArchiver(opened.spool_dir, opened.pool, self.stats,
                                      ledger=opened.ledger if reuse_binaries else None, redownload=redownload)
        # Items of the failed-item queue: resolved when this run archives them again.
        self._failed_keys: dict[str, set[tuple[str, str]]] = {}
        self._failed_lock = threading.Lock()
        # Requests other processes (Celery workers) sent for this run: (per credential and group, 429s).
        self._remote: tuple[dict[str, dict[str, int]], dict[str, int]] = ({}, {})

    # --- work ----------------------------------------------------------------------------------

    def tasks(self) -> list[StreamTask]:
        """Every task of this run; child streams ride along with their parent's tasks."""
        return self.opened.tasks(self.selected)

    def run_task(self, task: StreamTask) -> TaskResult:
        stream = self.streams[(task.connection, task.source, task.stream)]
        sid = source_id(task.source, task.connection)
        name = self.pipeline.name
        checkpoint = None if self.window.full_refresh else \
            self.state.get_checkpoint(name, sid, task.stream, task.partition)
        children = self.opened.children(task.connection, task.stream, self.selected)
        batch: list[Routed] = []
        result = TaskResult(task, "ok", worker=f"{socket.gethostname()}:{os.getpid()}")
        batch_size = self.pipeline.executor.batch_size
        binary_batch = BINARY_RECORDS_PER_DOWNLOAD * self.pipeline.executor.downloads
        with_binaries = 0  # records of ``batch`` that carry binaries
        # One batch's records are written by a thread of the task while the next batch is staged
        # here (its binaries waited for, its rows made): the sinks' work on one batch overlaps the
        # mapping of the next. Up to two batches are in flight; checkpoints are committed here, in
        # order, only once every batch before them is written (invariant 1).
        writer = _BatchWriter(f"rcetl-write-{task.label}")
        stopped = False  # a batch's binaries were cut short by the stop
        unsettled = False  # settling a batch raised: no checkpoint may move after it

        def settle(checkpoints_too: bool = True) -> None:
            """Wait for the oldest batch in flight; count it, then commit the checkpoints behind
            it (not when a batch before it failed: ``checkpoints_too=False``)."""
            nonlocal unsettled
            try:
                done = writer.settle()
            except BaseException:
                unsettled = True
                raise
            if done is None:
                return
            unsettled = True  # until its failed items are queued and its checkpoints committed
            res, checkpoints = done
            result.records += len(res.archived)
            result.failed += len(res.failed)
            self._archived(res.archived)
            for routed, error in res.failed:
                self._queue_failed(routed, error)
            if checkpoints_too and not res.stopped:
                for cp in checkpoints:
                    self.state.put_checkpoint(name, sid, task.stream, cp.partition or task.partition, cp.value)
            unsettled = False

        def drain(raised: BaseException, checkpoints_too: bool = False) -> BaseException | None:
            """After ``raised``: the batches still in flight end and are counted; no checkpoint
            moves (the first error is the one the task reports). After a stop that did not come
            from a batch or its settling (``checkpoints_too``), the checkpoints behind the batches
            written are committed, up to the first batch that failed. Another error of a batch is logged; a
            kill (a BaseException that is not an Exception) is returned, to be raised instead of
            an ordinary ``raised``."""
            seen = {id(raised)}  # a batch after a failed one ends with the same exception
            kill: BaseException | None = None
            while writer.busy:
                try:
                    settle(checkpoints_too=checkpoints_too)
                except BaseException as exc:  # noqa: BLE001 - the task raises ``raised`` (or the kill)
                    checkpoints_too = False
                    if id(exc) in seen:
                        continue
                    seen.add(id(exc))
                    if not isinstance(exc, Exception):
                        kill = kill or exc
                    else:
                        log.warning("task %s: a batch in flight failed too: %s: %s", task.label,
                                    type(exc).__name__, redact(str(exc)))
            return kill if isinstance(raised, Exception) else None

        def stopping(exc: BaseException) -> bool:
            """Whether ``exc`` is a wait ended by the run's stop (not a failure)."""
            return isinstance(exc, RunStopped) or (
                self.stop_event.is_set() and isinstance(exc, RcetlError) and isinstance(exc.__cause__, RunStopped))

        def flush() -> bool:
            """Stage the batch and send it to be written; False when the run stopped before all
            of its binaries were stored."""
            nonlocal stopped, with_binaries
            staged = self.archiver.stage(batch)
            batch.clear()
            if with_binaries:
                _trim_malloc()  # the batch's download buffers are freed: out of the threads' arenas
            with_binaries = 0
            while writer.full:
                settle()
            if staged.result.stopped:
                stopped = True
            writer.send(self.archiver.commit, staged)
            return not stopped

        try:
            try:
                # One batch read ahead: with the batch being staged and two in flight, four batches
                # are in memory (two ahead made it five: peak RSS 132 -> 154 MB on recordings).
                for item in self._read_ahead(task, stream, checkpoint, children, depth=batch_size,
                                             binary_depth=binary_batch):
                    if isinstance(item, Checkpoint):
                        # What was read before it is sent to be written (progress is durable at
                        # every checkpoint); the batches in flight are not waited for here.
                        if stopped or (batch and not flush()):
                            # Items were cut short by the stop: the checkpoint stays before them.
                            result.status = "stopped"
                            break
                        if not writer.hold(item):  # nothing in flight: all before it is written
                            self.state.put_checkpoint(name, sid, task.stream, item.partition or task.partition,
                                                      item.value)
                        if self.stop_event.is_set():
                            result.status = "stopped"
                            break
                        continue
                    batch.append(item)
                    with_binaries += _holds_binaries(item)
                    if len(batch) >= batch_size or with_binaries >= binary_batch:
                        flush()
                    if self.stop_event.is_set():
                        flush()  # what was read is stored; the checkpoint stays where it was
                        result.status = "stopped"
                        break
                else:
                    flush()
            except BaseException as exc:
                # Raised here (the reader, a stage, a batch settled): a stop keeps what was written.
                kill = drain(exc, checkpoints_too=stopping(exc) and not unsettled)
                if kill is not None:
                    raise kill from exc
                raise
            finally:
                writer.close()
            try:
                while writer.busy:  # the last batches' outcomes (or the exception one raised)
                    settle()
            except BaseException as exc:
                kill = drain(exc)
                if kill is not None:
                    raise kill from exc
                raise
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

    def _read_ahead(self, task: StreamTask, stream: Stream, checkpoint: Any, children: list[tuple[str, Stream]],
                    depth: int, binary_depth: int) -> Iterator[Routed | Checkpoint]:
        """The task's items, read by a thread up to ``depth`` items (of which at most
        ``binary_depth`` with binaries) ahead of the batch being written.

        While one batch's records are written, the next pages are read and their binaries already
        downloading, so neither the rate budget nor the sinks wait for the other. Order is kept:
        items, and the checkpoints between them, arrive exactly as the stream yields them.
        """
        ahead: queue.Queue[Any] = queue.Queue(maxsize=max(depth, 1))
        # Taken by an item with binaries; a reader that ran out waits for a refill, not for one slot.
        binary_slots = ReadAheadSlots(max(binary_depth, 1), refill=BINARY_RECORDS_PER_DOWNLOAD)
        stop = threading.Event()
        # Where a record goes depends only on its stream and whether it has binaries: routed once
        # per kind, not once per record (a backfill routes hundreds of thousands of calls).
        routes: dict[tuple[int, str, bool], Routed] = {}

        def route(record: Record, s: Stream, src: str) -> Routed:
            kind = (id(s), record.stream, bool(record.blobs))
            known = routes.get(kind)
            if known is None:
                routes[kind] = known = self.opened.route(record, s, task.connection, src)
                return known
            return Routed(record=record, stream=s, origin=known.origin, record_sinks=known.record_sinks,
                          blob_sinks=known.blob_sinks)

        def put(entry: Any) -> bool:
            if isinstance(entry, Routed) and _holds_binaries(entry):
                while not binary_slots.take(timeout=0.2):
                    if stop.is_set():
                        return False
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
                    routed = [route(item, stream, task.source)]
                    for child_src, child in children:
                        routed += [route(d, child, child_src) for d in child.derive(item)]
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
                if isinstance(entry, Routed) and _holds_binaries(entry):
                    binary_slots.give()
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

    def _archived(self, items: list[ArchivedRecord]) -> None:
        """Resolve archived items that were queued as failed, and tell observers."""
        if self._failed_keys:
            for item in items:
                keys = self._failed_keys.get(item.stream)
                if keys and (item.record.account, repr(item.key)) in keys:
                    with self._failed_lock:
                        keys.discard((item.record.account, repr(item.key)))
                    self.state.resolve_failed(self.pipeline.name, item.stream, item.record.account, item.key)
                    self.stats.add(item.stream, retried=1)
        self.pm.items_archived(self.run, items)

    def track_failed(self) -> None:
        """Note the queued failed items of this run's streams, so archiving one again resolves it
        (a Celery task does this; a local run does it in :meth:`retry_failed`)."""
        for name in {k[2] for k in self.streams}:
            every = self.state.due_failed(self.pipeline.name, name, include_not_due=True)
            if every:
                self._failed_keys[name] = {(i.account, repr(i.key)) for i in every}

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
                routed = self.opened.route(record, stream, origin["connection"], origin["source"])
                routed.redownload = True  # queued because its binary failed or its stored bytes were bad
                batch.append(routed)
            for start in range(0, len(batch), self.pipeline.executor.batch_size):
                if self.stop_event.is_set():
                    return still  # the rest stays queued as it was
                chunk = batch[start:start + self.pipeline.executor.batch_size]
                res = self.archiver.archive(chunk)
                self._archived(res.archived)
                for routed, error in res.failed:
                    self._queue_failed(routed, error)
                    still += 1
        return still

    def failed_count(self) -> int:
        return self.opened.failed_count()

    # --- requests ------------------------------------------------------------------------------

    def report_remote_requests(self, requests: dict[str, dict[str, int]], throttled: dict[str, int]) -> None:
        """What other processes (Celery workers) sent for this run so far, per credential: shown by
        progress and counted in the summary beside this process's own requests."""
        self._remote = ({c: dict(g) for c, g in requests.items()}, dict(throttled))  # one assignment

    def budget_snapshots(self) -> list[tuple[str, dict[str, GroupState]]]:
        """Each credential's budget as this run sees it: this process's requests plus the workers'."""
        requests, throttled = self._remote
        budgets = dict(self.opened.budgets.created) if self.opened.budgets else {}
        snaps = {cred: budget.snapshot() for cred, budget in budgets.items()}
        for cred in requests:
            snaps[cred] = _with_remote(snaps.get(cred, {}), requests[cred], throttled.get(cred, 0))
        return list(snaps.items())

    def budget_report(self) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
        """Requests sent per credential and API group, and 429s per credential, for the summary."""
        requests: dict[str, dict[str, int]] = {}
        throttled: dict[str, int] = {}
        for cred, snap in self.budget_snapshots():
            requests[cred] = {g: s.sent for g, s in snap.items()}
            throttled[cred] = sum(s.throttled for s in snap.values())
        return requests, throttled


def _with_remote(snap: dict[str, GroupState], sent: dict[str, int], throttled: int) -> dict[str, GroupState]:
    """A budget's snapshot with the requests and 429s other processes reported added to it."""
    snap = dict(snap)
    first = True
    for group in set(snap) | set(sent):
        st = snap.get(group) or GroupState(group, 0, 0.0, 0, 0.0, 0, 0.0, 0)
        snap[group] = dataclasses.replace(st, sent=st.sent + sent.get(group, 0),
                                          throttled=st.throttled + (throttled if first else 0))
        first = False
    return snap


_END = object()
_gc_settled = False
#: Net container allocations between passes of the collector over the young generation in a run.
_YOUNG = 100_000


def _settle_gc() -> None:
    """Leave the opened pipeline's objects (every imported module, SQLAlchemy's and pydantic's
    structures) out of the collector's full passes, and collect the young generation less often.

    A run keeps a few thousand records in flight (read ahead, in a batch): they live long enough
    to reach the oldest generation, so its full collections came often, each walking every object
    of every imported library: 15-20 % of a backfill's CPU (measured on 20,000 calls). Records are
    trees freed by reference counting; the collector only ever finds the rare cycle.

    The young generation is collected when the containers allocated exceed those freed by
    ``_YOUNG`` since the last pass. At 10,000 the batches in flight (~50,000 containers each) set
    that off 90 times a run, and their records, still held, were walked once as young and again in
    the middle generation: 0.8-0.96 s of the 4 s the run's process spent archiving 50,000 calls into
    PostgreSQL (gc.callbacks). At 100,000 the heap of a steady run does not grow that much, so the
    run's passes fall to a handful (0.04 s), and what a pass would find (cycles) is at most
    100,000 containers, a few MB."""
    global _gc_settled
    if _gc_settled:
        return
    _gc_settled = True
    gc.freeze()
    young, middle, old = gc.get_threshold()
    if young:  # 0: the collector is off; leave it so
        gc.set_threshold(max(young, _YOUNG), middle, old)


class ReadAheadSlots:
    """A counting semaphore whose waiter wakes once ``refill`` slots are free (or all of them), not
    at every slot given back.

    The reader of a task takes a slot per record with binaries and the writer gives one back per
    record it takes; with a plain semaphore a reader that ran out woke for every record the writer
    took, read one more and slept again: two hand-offs of the interpreter per recording, between
    threads the eight download threads need it from. Written by hand: the standard library's
    semaphores wake a waiter per release and have no threshold.
    """

    def __init__(self, slots: int, refill: int) -> None:
        self._free = slots
        self._refill = max(1, min(refill, slots))
        self._cond = threading.Condition(threading.Lock())
        self._waiting = False

    def take(self, timeout: float | None = None) -> bool:
        """Take a slot; when none is free, wait (up to ``timeout``) until a refill's worth is."""
        with self._cond:
            if self._free <= 0:
                self._waiting = True
                try:
                    if not self._cond.wait_for(lambda: self._free >= self._refill, timeout):
                        return False
                finally:
                    self._waiting = False
            self._free -= 1
            return True

    def give(self) -> None:
        with self._cond:
            self._free += 1
            if self._waiting and self._free >= self._refill:
                self._cond.notify()


def _holds_binaries(item: Routed) -> bool:
    """Whether the item waits for downloads (binaries, and a blob sink to store them in)."""
    return bool(item.blob_sinks and item.record.blobs)


def _trim_malloc() -> None:
    """Give the memory freed in the malloc arenas back to the system (glibc's ``malloc_trim``),
    after a batch's binaries are stored.

    Each download thread allocates from an arena of its own, and what a thread frees stays in its
    arena: the 1 MiB chunks read while downloading, hashing and computing botocore's checksums once
    glibc's moving mmap threshold has risen past them, a few MB per download thread by the end of a
    run. Trimmed after each batch with binaries (a fraction of a millisecond a batch), peak RSS
    archiving 4,000 recordings was 132-133 MB into S3 instead of 137, 107 into a folder instead of
    111. Measured and not kept: fixing the mmap threshold at 256 KiB (mallopt) saved 5 MB more but
    put every call-log page body (~3.6 MB) and SQLite batch message in a fresh mapping, page faults
    that cost the record path ~10 % (records/script into SQLite 0.82-0.91 -> 0.73-0.75). Only on
    glibc; elsewhere nothing to do."""
    trim = _glibc_malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _glibc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # here: 3-4 ms of import that only a run with binaries needs

    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # musl has none
        return None


@dataclass
class _Raised:
    exc: BaseException


class _BatchWriter:
    """One task's writing thread: batches are written in the order sent, up to ``depth`` of them
    sent and not yet settled (see RunSession.run_task).

    Written by hand, not with a ThreadPoolExecutor: the checkpoints read after a batch belong to
    that batch (committed once it and every batch before it are written), and the thread ends
    with the task (:meth:`close`). One thread for the task's life: starting a thread per batch
    waited for the GIL to reach the new thread (5-10 % of a busy run). Two batches in flight: the
    next is already queued when the sink finishes one, so a store in another process (SQLite's
    writer, a database server) does not wait for this process between batches."""

    def __init__(self, name: str, depth: int = 2) -> None:
        self.name = name
        self.depth = depth
        self._thread: threading.Thread | None = None
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._inflight: collections.deque[_InFlight] = collections.deque()

    @property
    def full(self) -> bool:
        return len(self._inflight) >= self.depth

    @property
    def busy(self) -> bool:
        return bool(self._inflight)

    def send(self, write: Any, staged: Any) -> None:
        """Queue ``staged`` to be written by ``write`` after the batches sent before it."""
        assert not self.full, "settle the oldest batch first"
        if self._thread is None:
            # In the task's context, as the task's own work is (rcetl.budget.tally). Started before
            # the batch counts as in flight: a thread that cannot start leaves none to wait for.
            thread = threading.Thread(target=contextvars.copy_context().run, args=(self._serve,),
                                      name=self.name, daemon=True)
            thread.start()
            self._thread = thread
        entry = _InFlight()
        self._inflight.append(entry)
        self._jobs.put((write, staged, entry))

    def _serve(self) -> None:
        failed: _Raised | None = None
        while True:
            job = self._jobs.get()
            if job is None:
                return
            write, staged, entry = job
            if failed is not None:
                entry.outcome = failed  # not tried: the task stops at the failure before it
            else:
                try:
                    entry.outcome = write(staged)
                except BaseException as exc:  # noqa: BLE001 - handed to the task when it settles the batch
                    entry.outcome = failed = _Raised(exc)
            entry.done.set()

    def hold(self, checkpoint: Checkpoint) -> bool:
        """Keep ``checkpoint`` until the last batch sent is written (:meth:`settle` hands it
        back); False if no batch is in flight."""
        if not self._inflight:
            return False
        self._inflight[-1].checkpoints.append(checkpoint)
        return True

    def settle(self) -> tuple[Any, list[Checkpoint]] | None:
        """The oldest batch in flight's result and the checkpoints behind it, once written; None
        if there was none. Raises what writing it raised."""
        if not self._inflight:
            return None
        entry = self._inflight.popleft()
        entry.done.wait()
        if isinstance(entry.outcome, _Raised):
            raise entry.outcome.exc
        return entry.outcome, entry.checkpoints

    def close(self) -> None:
        """End the thread once every batch sent is written; their outcomes stay for :meth:`settle`."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None


@dataclass
class _InFlight:
    """A batch sent to the writing thread: its outcome once written, the checkpoints behind it."""

    done: threading.Event = field(default_factory=threading.Event)
    outcome: Any = None
    checkpoints: list[Checkpoint] = field(default_factory=list)
