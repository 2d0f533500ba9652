"""Archive one batch of records: binaries first, then records, in every sink (invariants 1, 2, 4).

For each batch: every binary is downloaded once (streamed to a spool file, hashed on the way),
stored in every blob sink of its stream, and only then are the records, carrying archive
locations and checksums, upserted into every record sink. A record whose binary or row fails
goes to the failed-item queue with its error; the rest of the batch carries on.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Executor, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..content import check_content
from ..errors import ItemGone, PermanentError, RcetlError, TransientError
from ..interfaces import BlobSink, RecordSink, Stream
from ..records import ArchivedRecord, BlobResult, Record
from ..run import RunStats
from ..secrets import redact
from ..stopping import RunStopped
from .ledger import BlobLedger, LedgerLookups, reuse
from .spool import SpoolFiles

log = logging.getLogger("rcetl.engine")

SINK_RETRIES = 3  # transient sink faults (a restarted database, a 503) are retried in place
_sleep = time.sleep


@dataclass
class Routed:
    """A record with where it came from and where it goes."""

    record: Record
    stream: Stream
    origin: dict[str, str]  # {"connection": ..., "source": ...}: enough to retry it in a later run
    record_sinks: list[tuple[str, RecordSink]]
    blob_sinks: list[tuple[str, BlobSink]]
    # Binaries already on their way (see BatchArchiver.start): blob_id -> its outcome to come.
    blob_futures: dict[str, Future[BlobResult]] | None = None
    # A retried failed item (a failed download, or stored bytes `rcetl verify` found bad): its
    # binaries are downloaded again, whatever the blob ledger says.
    redownload: bool = False


@dataclass
class BatchResult:
    archived: list[ArchivedRecord] = field(default_factory=list)
    failed: list[tuple[Routed, str]] = field(default_factory=list)
    # Items whose binaries were cut short by a stopping run: neither written nor queued as failed;
    # the checkpoint must not pass them, so the next run reads them again.
    stopped: list[Routed] = field(default_factory=list)


@dataclass
class _SinkWrite:
    """One record sink's prepared write of a staged batch."""

    name: str
    sink: RecordSink
    items: list[tuple[Routed, ArchivedRecord]]
    write: Callable[[], int | None]


@dataclass
class StagedBatch:
    """A batch whose binaries are stored and whose record writes are prepared (see
    :meth:`BatchArchiver.stage`); what failed or was stopped so far is in ``result``."""

    result: BatchResult
    ready: list[tuple[Routed, ArchivedRecord]] = field(default_factory=list)
    writes: list[_SinkWrite] = field(default_factory=list)


class SinkUnavailable(TransientError):
    """A sink kept failing for the whole batch: the task stops without moving its checkpoint."""


def _retrying(what: str, fn: Callable[[], Any], sleep: Callable[[float], None] | None = None) -> Any:
    sleep = sleep or _sleep  # looked up per call, so tests can make the waits instant
    delay = 1.0
    for attempt in range(1, SINK_RETRIES + 1):
        try:
            return fn()
        except TransientError as exc:
            if attempt == SINK_RETRIES:
                raise SinkUnavailable(f"{what}: {exc.message}", hint=exc.hint) from exc
            log.warning("%s failed (%s); retrying in %.0fs", what, redact(exc.message), delay)
            sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


class BatchArchiver:
    """Archives batches for one run (it counts into the run's ``stats``); what was archived and
    what failed comes back in each :class:`BatchResult`, for the run to act on."""

    def __init__(self, spool_dir: Path, pool: Executor, stats: RunStats,
                 ledger: BlobLedger | None = None, redownload: bool = False) -> None:
        self.spool_dir = spool_dir
        self.pool = pool
        self.stats = stats
        # What was archived of each binary: a binary every sink still holds is not downloaded again
        # (the overlap window and --full-refresh re-read records, not files); --redownload ignores it.
        self.ledger = ledger
        self.redownload = redownload
        # Looked up many binaries at a time, not one query per download.
        self._lookups = LedgerLookups(ledger) if ledger is not None and not redownload else None
        self._spools = SpoolFiles.of(spool_dir)
        self._inflight: dict[tuple[str, str], Future[BlobResult]] = {}
        self._inflight_lock = threading.Lock()

    def start(self, item: Routed) -> Routed:
        """Send the item's binaries on their way now, so downloads overlap the writing of the batch
        before; :meth:`archive` waits for them. Only binaries are started: records are still
        written after their binaries, and checkpoints after their batch."""
        if item.blob_futures is not None or not item.blob_sinks:
            return item
        item.blob_futures = {}
        with self._inflight_lock:
            for ref in item.record.blobs:
                # the same binary named by two records in flight is downloaded once
                key = (item.record.account, ref.blob_id)
                fut = self._inflight.get(key)
                if fut is None:
                    if self._lookups is not None and not item.redownload:
                        self._lookups.expect(item.record.account, ref.blob_id)
                    fut = self.pool.submit(self._store_one, item, ref)
                    self._inflight[key] = fut
                item.blob_futures[ref.blob_id] = fut
        return item

    def archive(self, batch: Sequence[Routed]) -> BatchResult:
        """Archive ``batch`` now: :meth:`stage` then :meth:`commit`."""
        return self.commit(self.stage(batch))

    def stage(self, batch: Sequence[Routed]) -> StagedBatch:
        """Everything of ``batch`` but its records' writes: its binaries stored and durable in
        every blob sink and noted in the ledger, and each record sink's write prepared
        (:meth:`RecordSink.prepare`). A run stages the next batch while the last is committed."""
        staged = StagedBatch(BatchResult())
        if not batch:
            return staged
        result = staged.result
        try:
            # Also when a store raised (SinkUnavailable): a failed download left in the in-flight
            # table would fail every later record naming the binary, after the sink is back.
            blob_results = self._store_blobs(batch)
            self._sync_blob_sinks(batch)
            self._remember(batch, blob_results)
        finally:
            self._done_with(batch)
        ready = staged.ready
        for item in batch:
            if not item.blob_sinks or not item.record.blobs:  # most records: nothing to wait for
                ready.append((item, ArchivedRecord(item.record, [])))
                continue
            outcomes = [blob_results.get(id(item), {}).get(ref.blob_id) for ref in item.record.blobs]
            if any(o is not None and o.status == "stopped" for o in outcomes):
                result.stopped.append(item)
                continue
            errors = [o.error for o in outcomes if o is not None and o.error]
            if errors:
                result.failed.append((item, errors[0]))
                continue
            ready.append((item, ArchivedRecord(item.record, [o for o in outcomes if o is not None])))
        sinks: dict[str, tuple[RecordSink, list[tuple[Routed, ArchivedRecord]]]] = {}
        for routed, archived in ready:
            for name, sink in routed.record_sinks:
                sinks.setdefault(name, (sink, []))[1].append((routed, archived))
        for name, (sink, items) in sinks.items():
            records = [a for _, a in items]
            write: Callable[[], int | None]
            try:
                write = functools.partial(sink.write_prepared, sink.prepare(records))
            except Exception as exc:  # noqa: BLE001 - the commit isolates the record(s) it fails on
                write = _PrepareFailed(sink, records, exc)
            staged.writes.append(_SinkWrite(name, sink, items, write))
        return staged

    def commit(self, staged: StagedBatch) -> BatchResult:
        """Write a staged batch's records into every record sink (durable when this returns) and
        count what was archived."""
        result = staged.result
        for write in staged.writes:
            self._write_records(write, result)
        rejected = {id(r) for r, _ in result.failed}
        records: dict[str, int] = {}  # counted per stream, added once: the stats take a lock
        s = self.stats
        for routed, archived in staged.ready:
            if id(routed) in rejected:
                continue
            result.archived.append(archived)
            records[routed.record.stream] = records.get(routed.record.stream, 0) + 1
            for b in archived.blobs:
                if b.status == "gone":
                    s.add(routed.record.stream, gone=1)
                elif b.status == "stored":
                    uploaded = [x for x in b.stored if not x.skipped]
                    s.add(routed.record.stream, files=1, bytes=b.size or 0,
                          skipped_files=1 if not uploaded else 0)
        for stream, n in records.items():
            s.add(stream, records=n)
        for routed, _ in result.failed:
            self.stats.add(routed.record.stream, failed=1)
        return result

    # --- binaries ----------------------------------------------------------------------------

    def _store_blobs(self, batch: Sequence[Routed]) -> dict[int, dict[str, BlobResult]]:
        out: dict[int, dict[str, BlobResult]] = {}
        for item in batch:
            self.start(item)
        # One wake-up for the batch (or at its first failure), not one per binary in turn: each was
        # a hand-off of the interpreter, taken from the download threads.
        wait([f for item in batch for f in (item.blob_futures or {}).values()], return_when=FIRST_EXCEPTION)
        for item in batch:
            for blob_id, fut in (item.blob_futures or {}).items():
                out.setdefault(id(item), {})[blob_id] = fut.result()
        return out

    def _done_with(self, batch: Sequence[Routed]) -> None:
        """The batch's binaries are no longer on their way: a record naming one of them again
        asks the ledger (or downloads it) instead of sharing its download. Called once the ledger
        holds them: in between, such a record would find neither and download it twice."""
        with self._inflight_lock:
            for item in batch:
                for ref in item.record.blobs:
                    key = (item.record.account, ref.blob_id)
                    if self._inflight.get(key) is (item.blob_futures or {}).get(ref.blob_id):
                        self._inflight.pop(key, None)

    def _sync_blob_sinks(self, batch: Sequence[Routed]) -> None:
        """Make the batch's binaries durable in every blob sink that defers it (BlobSink.sync)
        before the ledger or any record names them (invariants 1 and 2)."""
        sinks: dict[int, tuple[str, BlobSink]] = {}
        for item in batch:
            for name, sink in item.blob_sinks:
                sinks.setdefault(id(sink), (name, sink))
        for name, sink in sinks.values():
            try:
                _retrying(f"blob sink {name!r}", sink.sync)
            except SinkUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - nothing of the batch is known durable: stop
                raise SinkUnavailable(f"blob sink {name!r} could not make the batch durable: "
                                      f"{type(exc).__name__}: {redact(str(exc))}") from exc

    def _remember(self, batch: Sequence[Routed], results: dict[int, dict[str, BlobResult]]) -> None:
        """Note in the ledger every binary of the batch the sinks now hold (one transaction)."""
        if self.ledger is None:
            return
        by_account: dict[str, dict[str, BlobResult]] = {}
        for item in batch:
            for blob_id, outcome in results.get(id(item), {}).items():
                if not outcome.reused:
                    by_account.setdefault(item.record.account, {})[blob_id] = outcome
        for account, outcomes in by_account.items():
            self.ledger.record(account, outcomes.values())

    def _reuse(self, item: Routed, ref) -> BlobResult | None:  # noqa: ANN001 - BlobRef
        if self._lookups is None or item.redownload:
            return None
        entry = self._lookups.get(item.record.account, ref.blob_id)
        result = reuse(ref, entry, item.blob_sinks)
        if result is not None:
            result.reused = True
            self.stats.add(item.record.stream, reused=1)
        return result

    def _store_one(self, item: Routed, ref) -> BlobResult:  # noqa: ANN001 - BlobRef
        reused = self._reuse(item, ref)
        if reused is not None:
            return reused
        spool = self._spools.open()
        started = time.monotonic()
        try:
            try:
                item.stream.download(ref, spool)
            except ItemGone:
                return BlobResult(ref=ref, status="gone")
            except RunStopped:
                return BlobResult(ref=ref, status="stopped")
            except RcetlError as exc:
                return BlobResult(ref=ref, status="failed", error=f"download of {ref.kind} {ref.blob_id}: {redact(exc.message)}")
            except Exception as exc:  # noqa: BLE001 - one bad item never stops the batch
                return BlobResult(ref=ref, status="failed",
                                  error=f"download of {ref.kind} {ref.blob_id}: {type(exc).__name__}: {redact(str(exc))}")
            # Before any sink sees it: the body must be what the source announced (a login page,
            # an error object, an empty or cut body is a failed item, retried later, never stored).
            verdict = check_content(ref, spool.evidence())
            if not verdict.ok:
                return BlobResult(ref=ref, status="failed", error=verdict.message(f"download of {ref.kind} {ref.blob_id}"))
            blob = spool.finish(ref, item.record)
            result = BlobResult(ref=blob.ref, status="stored", size=blob.size, sha256=blob.sha256,
                                first_byte_s=None if spool.first_byte_at is None else spool.first_byte_at - started)
            for sink_name, sink in item.blob_sinks:
                try:
                    stored = _retrying(f"blob sink {sink_name!r}", functools.partial(sink.store, blob))
                except SinkUnavailable:
                    raise
                except RcetlError as exc:
                    result.error = f"blob sink {sink_name!r} rejected {ref.kind} {ref.blob_id}: {redact(exc.message)}"
                    break
                except Exception as exc:  # noqa: BLE001
                    result.error = f"blob sink {sink_name!r} failed on {ref.kind} {ref.blob_id}: " \
                                   f"{type(exc).__name__}: {redact(str(exc))}"
                    break
                result.stored.append(stored)
                if not stored.skipped:
                    self.stats.add_sink(sink_name, files=1, bytes=stored.size)
            return result
        finally:
            self._spools.release(spool)

    # --- records -----------------------------------------------------------------------------

    def _write_records(self, write: _SinkWrite, result: BatchResult) -> None:
        name, sink, items = write.name, write.sink, write.items
        try:
            changed = _retrying(f"record sink {name!r}", write.write)
            self.stats.add_sink(name, records=len(items))
            self.stats.add_changed(changed if isinstance(changed, int) else None)
            return
        except SinkUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - isolate the row(s) the sink rejects
            log.info("record sink %r rejected a batch (%s); writing one by one", name, redact(str(exc)))
        for routed, archived in items:
            try:
                changed = _retrying(f"record sink {name!r}", functools.partial(sink.write, [archived]))
                self.stats.add_sink(name, records=1)
                self.stats.add_changed(changed if isinstance(changed, int) else None)
            except SinkUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001
                message = exc.message if isinstance(exc, PermanentError) else f"{type(exc).__name__}: {exc}"
                result.failed.append((routed, f"record sink {name!r} rejected {routed.record.stream} "
                                              f"{routed.record.key!r}: {redact(str(message))}"))


class _PrepareFailed:
    """The write of a batch whose :meth:`RecordSink.prepare` raised: its first attempt raises what
    prepare raised (the commit then retries a TransientError, or isolates the record a sink
    refuses); a retry prepares the batch again, so a passing fault does not fail the batch."""

    def __init__(self, sink: RecordSink, records: list[ArchivedRecord], exc: Exception) -> None:
        self.sink = sink
        self.records = records
        self.exc: Exception | None = exc

    def __call__(self) -> int | None:
        exc, self.exc = self.exc, None
        if exc is not None:
            raise exc
        return self.sink.write_prepared(self.sink.prepare(self.records))
