"""The binary path of the batch archiver: ledger look-ups many at a time, blob sinks made durable
(``sync``) before the ledger or any record names a batch, spool files reused unless a sink linked
them."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import rcetl
from rcetl.engine.archiver import BatchArchiver, Routed, SinkUnavailable
from rcetl.engine.ledger import BlobLedger
from rcetl.engine.spool import SpoolFiles
from rcetl.run import RunStats

AUDIO = b"ID3" + bytes(200)


class Stream(rcetl.Stream):
    name = "recording"

    def __init__(self) -> None:
        self.downloads: list[str] = []
        self._lock = threading.Lock()

    def partitions(self) -> list[str]:
        return [""]

    def read(self, partition: str, checkpoint: Any, window: rcetl.RunWindow) -> Iterator[rcetl.Record]:
        return iter(())

    def download(self, ref: rcetl.BlobRef, out: rcetl.BlobOutput) -> None:
        with self._lock:
            self.downloads.append(ref.blob_id)
        out.write(AUDIO)


class BlobSink(rcetl.BlobSink):
    """Keeps what it stored; ``sync`` notes the moment, as the events of the run."""

    def __init__(self, events: list[tuple[str, Any]]) -> None:
        super().__init__("files", rcetl.PluginConfig(), None)  # type: ignore[arg-type]
        self.events = events
        self.held: dict[str, rcetl.StoredBlob] = {}
        self.fail_sync: BaseException | None = None

    def store(self, blob: rcetl.SpooledBlob) -> rcetl.StoredBlob:
        stored = rcetl.StoredBlob(sink=self.name, location=f"mem://{blob.ref.blob_id}", size=blob.size,
                                  sha256=blob.sha256, content_type=blob.content_type)
        self.held[stored.location] = stored
        self.events.append(("store", blob.ref.blob_id))
        return stored

    def sync(self) -> None:
        if self.fail_sync is not None:
            raise self.fail_sync
        self.events.append(("sync", None))

    def stat_location(self, location: str) -> rcetl.StoredBlob | None:
        return self.held.get(location)


class RecordSink(rcetl.RecordSink):
    def __init__(self, events: list[tuple[str, Any]]) -> None:
        super().__init__("db", rcetl.PluginConfig(), None)  # type: ignore[arg-type]
        self.events = events

    def write(self, records: Any) -> int:
        self.events.append(("write", [r.record.key for r in records]))
        return len(records)


class GatedPool(ThreadPoolExecutor):
    """Runs nothing until ``open()``: every item of a batch is started before any download runs."""

    def __init__(self) -> None:
        super().__init__(max_workers=8)
        self.gate = threading.Event()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        def gated() -> Any:
            self.gate.wait(10)
            return fn(*args, **kwargs)

        return super().submit(gated)


@pytest.fixture
def events() -> list[tuple[str, Any]]:
    return []


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[BlobLedger]:
    led = BlobLedger(f"sqlite:///{tmp_path / 'state.db'}", "p")
    yield led
    led.close()


def _items(n: int, stream: Stream, blob_sink: BlobSink, record_sink: RecordSink) -> list[Routed]:
    out = []
    for i in range(n):
        ref = rcetl.BlobRef(f"recording-{i}", f"https://media.example/{i}", "recording", "audio/mpeg",
                            accept=("audio/*",))
        record = rcetl.Record("recording", str(i), {"id": i}, account="acc", blobs=[ref])
        out.append(Routed(record, stream, {"connection": "rc", "source": "recording"},
                          [("db", record_sink)], [("files", blob_sink)]))
    return out


def _archiver(tmp_path: Path, pool: Any, ledger: BlobLedger | None) -> BatchArchiver:
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    return BatchArchiver(spool, pool, RunStats(), ledger=ledger)


def _started_then_archived(tmp_path: Path, ledger: BlobLedger, batch: list[Routed]) -> Any:
    """Start every item of ``batch`` before any download may run, then archive it."""
    with GatedPool() as pool:
        archiver = _archiver(tmp_path, pool, ledger)
        for item in batch:
            archiver.start(item)
        pool.gate.set()
        return archiver.archive(batch)


def test_the_ledger_is_asked_once_for_binaries_started_together(tmp_path, events, ledger, monkeypatch) -> None:
    stream, blob_sink, record_sink = Stream(), BlobSink(events), RecordSink(events)
    queries: list[list[str]] = []
    real = ledger.lookup
    monkeypatch.setattr(ledger, "lookup", lambda account, ids: queries.append(list(ids)) or real(account, ids))
    result = _started_then_archived(tmp_path, ledger, _items(120, stream, blob_sink, record_sink))
    assert len(result.archived) == 120
    assert len(queries) == 1 and sorted(queries[0]) == sorted(f"recording-{i}" for i in range(120))


def test_binaries_the_ledger_knows_are_reused_and_the_rest_downloaded(tmp_path, events, ledger) -> None:
    stream, blob_sink, record_sink = Stream(), BlobSink(events), RecordSink(events)
    with ThreadPoolExecutor(8) as pool:
        first = _archiver(tmp_path, pool, ledger)
        assert len(first.archive(_items(10, stream, blob_sink, record_sink)).archived) == 10
        assert len(stream.downloads) == 10
        stream.downloads.clear()
        again = _archiver(tmp_path, pool, ledger)
        result = again.archive(_items(15, stream, blob_sink, record_sink))
    assert sorted(stream.downloads) == sorted(f"recording-{i}" for i in range(10, 15))
    reused = [b for a in result.archived for b in a.blobs if b.reused]
    assert len(reused) == 10 and all(b.status == "stored" and b.stored[0].skipped for b in reused)


def test_a_failed_lookup_fails_every_download_waiting_for_it(tmp_path, events, ledger, monkeypatch) -> None:
    stream, blob_sink, record_sink = Stream(), BlobSink(events), RecordSink(events)

    def broken(account: str, ids: Any) -> Any:
        raise rcetl.TransientError("state store down")

    monkeypatch.setattr(ledger, "lookup", broken)
    with pytest.raises(rcetl.TransientError, match="state store down"):
        _started_then_archived(tmp_path, ledger, _items(5, stream, blob_sink, record_sink))
    assert stream.downloads == [] and not any(e[0] == "write" for e in events)


def test_blob_sinks_sync_before_the_ledger_and_the_records_name_the_batch(tmp_path, events, ledger,
                                                                         monkeypatch) -> None:
    stream, blob_sink, record_sink = Stream(), BlobSink(events), RecordSink(events)
    real = ledger.record
    monkeypatch.setattr(ledger, "record", lambda account, results: events.append(("ledger", None))
                        or real(account, results))
    with ThreadPoolExecutor(4) as pool:
        _archiver(tmp_path, pool, ledger).archive(_items(6, stream, blob_sink, record_sink))
    kinds = [kind for kind, _ in events]
    assert kinds.count("sync") == 1  # once per batch, not per binary
    assert kinds.index("sync") > max(i for i, k in enumerate(kinds) if k == "store")
    assert kinds.index("sync") < kinds.index("ledger") < kinds.index("write")


def test_a_sink_that_cannot_sync_stops_the_batch_before_any_record(tmp_path, events, ledger, monkeypatch) -> None:
    monkeypatch.setattr("rcetl.engine.archiver._sleep", lambda s: None)
    stream, blob_sink, record_sink = Stream(), BlobSink(events), RecordSink(events)
    blob_sink.fail_sync = OSError(5, "Input/output error")
    with ThreadPoolExecutor(4) as pool, pytest.raises(SinkUnavailable, match="could not make the batch durable"):
        _archiver(tmp_path, pool, ledger).archive(_items(3, stream, blob_sink, record_sink))
    assert not any(kind == "write" for kind, _ in events)
    assert ledger.lookup("acc", [f"recording-{i}" for i in range(3)]) == {}


def test_a_transient_sync_fault_is_retried(tmp_path, events, ledger, monkeypatch) -> None:
    monkeypatch.setattr("rcetl.engine.archiver._sleep", lambda s: None)
    stream, blob_sink, record_sink = Stream(), BlobSink(events), RecordSink(events)
    real_sync = blob_sink.sync
    faults = [rcetl.TransientError("busy")]

    def flaky() -> None:
        if faults:
            raise faults.pop()
        real_sync()

    blob_sink.sync = flaky  # type: ignore[method-assign]
    with ThreadPoolExecutor(4) as pool:
        result = _archiver(tmp_path, pool, ledger).archive(_items(3, stream, blob_sink, record_sink))
    assert len(result.archived) == 3 and ("sync", None) in events


def test_spool_files_are_reused_unless_a_sink_linked_them(tmp_path: Path) -> None:
    files = SpoolFiles(tmp_path)
    first = files.open()
    first.write(b"a long first recording")
    first.finish(rcetl.BlobRef("a", "u", "recording"), None)
    files.release(first)
    assert os.path.getsize(first.path) == 0  # kept empty: no recording waits on disk once stored
    second = files.open()
    assert second.path == first.path  # truncated and reused, not a new file
    second.write(b"short")
    second.finish(rcetl.BlobRef("b", "u", "recording"), None)
    assert Path(second.path).read_bytes() == b"short"
    os.link(second.path, tmp_path / "archived")  # what the folder sink does with it
    files.release(second)
    assert not os.path.exists(second.path)  # only its spool name goes
    assert (tmp_path / "archived").read_bytes() == b"short"
    third = files.open()
    assert third.path != second.path
    third.discard()


def test_every_archiver_on_a_spool_folder_shares_its_kept_files(tmp_path: Path) -> None:
    a = BatchArchiver(tmp_path, ThreadPoolExecutor(1), RunStats())
    b = BatchArchiver(tmp_path, ThreadPoolExecutor(1), RunStats())  # a Celery worker's next task
    assert a._spools is b._spools is SpoolFiles.of(tmp_path)


def test_a_binary_named_again_while_its_batch_is_remembered_is_downloaded_once(tmp_path, events, ledger,
                                                                               monkeypatch) -> None:
    """The newest message comes back in the next listing while its batch is being staged: the
    second record shares the first's download or finds it in the ledger, never a second request."""
    stream, blob_sink, record_sink = Stream(), BlobSink(events), RecordSink(events)
    first, again = _items(1, stream, blob_sink, record_sink), _items(1, stream, blob_sink, record_sink)
    with ThreadPoolExecutor(4) as pool:
        archiver = _archiver(tmp_path, pool, ledger)
        real = archiver._remember

        def remember(batch: Any, results: Any) -> None:
            archiver.start(again[0])  # read (and sent on its way) by the reader thread meanwhile
            real(batch, results)

        monkeypatch.setattr(archiver, "_remember", remember)
        archiver.archive(first)
        monkeypatch.setattr(archiver, "_remember", real)
        result = archiver.archive(again)
    assert stream.downloads == ["recording-0"]
    assert [b.status for a in result.archived for b in a.blobs] == ["stored"]


def test_the_batch_waits_for_its_binaries_once_not_for_each_in_turn(tmp_path, events, monkeypatch) -> None:
    """Waiting for each download's future in turn woke the writing thread for every binary (a
    hand-off of the interpreter the download threads pay for): it waits once for the whole batch,
    then only reads results that are there."""
    stream, blob_sink, record_sink = Stream(), BlobSink(events), RecordSink(events)
    waited_on_unfinished: list[bool] = []
    real = Future.result

    def result(self: Future[Any], timeout: float | None = None) -> Any:
        waited_on_unfinished.append(not self.done())
        return real(self, timeout)

    monkeypatch.setattr(Future, "result", result)
    with GatedPool() as pool:
        archiver = _archiver(tmp_path, pool, None)
        batch = _items(6, stream, blob_sink, record_sink)
        threading.Timer(0.05, pool.gate.set).start()  # downloads run only once the batch waits
        result_of_batch = archiver.archive(batch)
    assert len(result_of_batch.archived) == 6
    assert waited_on_unfinished and not any(waited_on_unfinished)


def test_read_ahead_slots_wake_a_waiting_reader_once_a_refill_is_free() -> None:
    from rcetl.engine.session import ReadAheadSlots

    slots = ReadAheadSlots(4, refill=2)
    assert all(slots.take(timeout=0) for _ in range(4))
    assert not slots.take(timeout=0.01)  # none free
    woke = threading.Event()
    reader = threading.Thread(target=lambda: slots.take(timeout=5) and woke.set())
    reader.start()
    slots.give()
    assert not woke.wait(0.1)  # one free slot does not wake the reader
    slots.give()
    assert woke.wait(5)  # a refill's worth does
    reader.join()
    assert slots.take(timeout=0)  # it took one of the two: one is left
    assert not slots.take(timeout=0)
    assert ReadAheadSlots(1, refill=32).take(timeout=0)  # a refill never exceeds the slots


def test_a_stored_binary_reports_the_latency_to_its_first_byte(tmp_path, events) -> None:
    """What the download limit of a server no budget binds is set by (rcetl.executors.concurrency):
    the time from the download's start to its first byte, not to its last (a large file is not a
    busy server)."""
    class SlowStream(Stream):
        def download(self, ref: rcetl.BlobRef, out: rcetl.BlobOutput) -> None:
            time.sleep(0.03)  # the server's answer
            out.write(AUDIO[:10])
            time.sleep(0.2)  # the rest of a large body
            out.write(AUDIO[10:])

    stream, blob_sink, record_sink = SlowStream(), BlobSink(events), RecordSink(events)
    with ThreadPoolExecutor(2) as pool:
        result = _archiver(tmp_path, pool, None).archive(_items(2, stream, blob_sink, record_sink))
    latencies = [r.blobs[0].first_byte_s for r in result.archived]
    assert all(lat is not None and 0.03 <= lat < 0.2 for lat in latencies), latencies
