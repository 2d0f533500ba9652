"""Review of the batched record path (stage while the batch before is written; two batches in
flight per task): the cases its own tests left open. Each test failed before its fix."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rcetl
from rcetl.engine import archiver as archiver_module
from rcetl.plugins.sinks.filesystem import FilesystemSink
from rcetl.plugins.sinks.sql.sink import SqlSink

from . import fakesource
from .archive import assert_archive_exact, checkpoint, db_rows, pipeline_text, run

BATCH2 = "executor: {workers: 2, downloads: 3, batch_size: 2}"


def _text(count: int = 8, page: int = 2) -> str:
    return pipeline_text(count, page).replace("executor: {workers: 2, downloads: 3}", BATCH2)


class Killed(BaseException):
    """The process died here."""


@pytest.fixture(autouse=True)
def _instant_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archiver_module, "_sleep", lambda s: None)



def _stopping_after_checkpoint_4(real: Any) -> Any:
    """The fake stream's read, whose wait after the checkpoint at item 4 is ended by the stop."""
    def read(self: Any, partition: str, cp: Any, window: Any) -> Iterator[Any]:
        for item in real(self, partition, cp, window):
            yield item
            if isinstance(item, rcetl.Checkpoint) and item.value == 4:
                raise rcetl.RunStopped("the run is stopping")

    return read

def _a_clean_rerun_completes_the_archive(pm, write_pipeline, tmp_path: Path) -> None:  # noqa: ANN001
    """Downloads work again: the next run archives all 8 items exactly once, checkpoint at the end."""
    fakesource.FAIL_DOWNLOADS.clear()
    summary = run(write_pipeline(_text()), pm)
    assert summary.status == "ok" and checkpoint(tmp_path) == 8
    assert_archive_exact(tmp_path, 8)

def test_a_transient_failure_in_prepare_is_retried_with_a_fresh_prepare(pm, write_pipeline, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # The write of a batch whose prepare failed transiently is retried: the retry must prepare again
    # (re-raising the first attempt's exception three times made the task fail: SinkUnavailable).
    real = SqlSink.prepare
    calls = {"n": 0}

    def prepare(self: SqlSink, records: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise rcetl.TransientError("a blip while preparing (injected)")
        return real(self, records)

    monkeypatch.setattr(SqlSink, "prepare", prepare)
    summary = run(write_pipeline(_text()), pm)
    assert summary.status == "ok", summary.errors
    assert checkpoint(tmp_path) == 8
    assert_archive_exact(tmp_path, 8)


def test_a_stop_seen_by_the_reader_keeps_the_checkpoints_of_the_batches_written(pm, write_pipeline, tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # A wait of the reader ended by the stop (RunStopped) while two batches were in flight: both
    # are written; the checkpoint behind them is committed, as a stop seen between items does
    # (it was dropped: the next run read again what was stored).
    real = fakesource.ItemsStream.read
    read = _stopping_after_checkpoint_4(real)

    monkeypatch.setattr(fakesource.ItemsStream, "read", read)
    summary = run(write_pipeline(_text()), pm)
    assert summary.status == "interrupted"
    assert not summary.errors
    assert checkpoint(tmp_path) == 4
    assert len(db_rows(tmp_path / "archive.db")) == 4
    monkeypatch.setattr(fakesource.ItemsStream, "read", real)
    summary = run(write_pipeline(_text()), pm)
    assert summary.status == "ok" and checkpoint(tmp_path) == 8
    assert_archive_exact(tmp_path, 8)


def test_after_a_stop_a_failed_item_that_could_not_be_queued_holds_the_checkpoints_behind_it(
        pm, write_pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The stop keeps the checkpoints of the batches written, but only up to the first batch whose
    # settling failed: here its failed item could not be queued, so no checkpoint may pass it.
    from rcetl.state import StateStore

    real = fakesource.ItemsStream.read
    read = _stopping_after_checkpoint_4(real)

    def add_failed(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("state store unavailable (injected)")

    fakesource.FAIL_DOWNLOADS.add(f"blob-{2**53 + 1}")  # the first item, in the first batch
    with monkeypatch.context() as mp:
        mp.setattr(fakesource.ItemsStream, "read", read)
        mp.setattr(StateStore, "add_failed", add_failed)
        summary = run(write_pipeline(_text()), pm)
    assert summary.status == "interrupted"
    assert checkpoint(tmp_path) is None
    _a_clean_rerun_completes_the_archive(pm, write_pipeline, tmp_path)


def test_a_kill_in_a_batch_in_flight_is_not_swallowed_by_the_failure_before_it(pm, write_pipeline, tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # The third batch's blob sink fails (the task stops) while batch 2 is being written and is
    # killed there: the kill must reach the caller, not vanish in the drain of the batches in flight.
    real_sync, real_write = FilesystemSink.sync, SqlSink.write_prepared
    syncs = {"n": 0}
    writes = {"n": 0}

    def sync(self: FilesystemSink) -> None:
        syncs["n"] += 1
        if syncs["n"] == 3:
            raise OSError("disk gone (injected)")
        real_sync(self)

    def write_prepared(self: SqlSink, prepared: Any) -> Any:
        writes["n"] += 1
        if writes["n"] == 2:
            raise Killed("write #2")
        return real_write(self, prepared)

    monkeypatch.setattr(FilesystemSink, "sync", sync)
    monkeypatch.setattr(SqlSink, "write_prepared", write_prepared)
    with pytest.raises(Killed):
        run(write_pipeline(_text()), pm)
    assert checkpoint(tmp_path) in (None, 2)


def test_a_batch_in_flight_failing_after_the_reader_failed_is_logged(pm, write_pipeline, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    # The task reports the source's error; the sink's failure of the batch in flight is not lost
    # without a word (it was swallowed by the drain).
    real_read, real_write = fakesource.ItemsStream.read, SqlSink.write_prepared
    writes = {"n": 0}

    def read(self: Any, partition: str, cp: Any, window: Any) -> Iterator[Any]:
        for item in real_read(self, partition, cp, window):
            yield item
            if isinstance(item, rcetl.Checkpoint) and item.value == 4:
                raise rcetl.RcetlError("source went away (injected)")

    def write_prepared(self: SqlSink, prepared: Any) -> Any:
        writes["n"] += 1
        if writes["n"] >= 2:
            raise rcetl.TransientError("database restarting (injected)")
        return real_write(self, prepared)

    monkeypatch.setattr(fakesource.ItemsStream, "read", read)
    monkeypatch.setattr(SqlSink, "write_prepared", write_prepared)
    summary = run(write_pipeline(_text()), pm)
    assert summary.status == "failed"
    assert [e for e in summary.errors if "source went away" in e] == summary.errors and len(summary.errors) == 1
    assert any("database restarting" in r.getMessage() and "failed too" in r.getMessage() for r in caplog.records)
    assert checkpoint(tmp_path) is None


def test_a_writer_thread_that_cannot_start_fails_the_task_instead_of_hanging(pm, write_pipeline, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    real_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if self.name.startswith("rcetl-write-"):
            raise RuntimeError("can't start new thread")
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(run(write_pipeline(_text()), pm)), daemon=True)
    real_start(worker)
    worker.join(20)
    assert not worker.is_alive(), "the run hangs on a batch that was never sent"
    [summary] = out
    assert summary.status == "failed"
    assert any("can't start new thread" in e for e in summary.errors), summary.errors
    assert checkpoint(tmp_path) is None


def test_a_kill_while_queuing_a_failed_item_leaves_the_checkpoint_before_it(pm, write_pipeline, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # Settling a batch queues its failed items before committing the checkpoints behind it: a kill
    # in between must not leave a checkpoint past an item that is neither stored nor queued.
    from rcetl.state import StateStore

    def add_failed(*args: Any, **kwargs: Any) -> None:
        raise Killed("queuing a failed item")

    fakesource.FAIL_DOWNLOADS.add(f"blob-{2**53 + 1}")  # the first item, in the first batch
    with monkeypatch.context() as mp:
        mp.setattr(StateStore, "add_failed", add_failed)
        with pytest.raises(Killed):
            run(write_pipeline(_text()), pm)
    assert checkpoint(tmp_path) is None
    _a_clean_rerun_completes_the_archive(pm, write_pipeline, tmp_path)


def test_a_binary_cut_short_in_an_earlier_batch_holds_the_checkpoint(pm, write_pipeline, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # A download ended by a stop the task has not seen yet (a Celery worker's session has a stop
    # signal of its own; the downloads watch the opened pipeline's): the batch is sent at its size,
    # the next batch is complete, and the checkpoint after both must not pass the item cut short.
    real = fakesource.ItemsStream.download

    def download(self: Any, ref: rcetl.BlobRef, out: Any) -> None:
        if ref.blob_id == f"blob-{2**53 + 2}":  # the second item, in the first batch
            raise rcetl.RunStopped("the run is stopping")
        real(self, ref, out)

    with monkeypatch.context() as mp:
        mp.setattr(fakesource.ItemsStream, "download", download)
        summary = run(write_pipeline(_text(8, 4)), pm)
    assert summary.status == "interrupted"
    assert checkpoint(tmp_path) is None
    summary = run(write_pipeline(_text(8, 4)), pm)
    assert summary.status == "ok" and checkpoint(tmp_path) == 8
    assert_archive_exact(tmp_path, 8)


def test_a_stop_stores_what_was_read_before_it(pm, write_pipeline, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # The stop is seen after the third item of a batch of four: those three are still stored (the
    # checkpoint stays before them), so the next run only rewrites them.
    from rcetl.engine.archiver import Routed
    from rcetl.engine.session import RunSession

    real = RunSession._read_ahead

    def ahead(self: RunSession, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for entry in real(self, *args, **kwargs):
            if isinstance(entry, Routed) and entry.record.data["n"] == 2:
                self.stop_event.set("stopped by the test")  # on the task's thread: seen after this item
            yield entry

    text = pipeline_text(8, 8).replace("executor: {workers: 2, downloads: 3}",
                                       "executor: {workers: 2, downloads: 3, batch_size: 4}")
    with monkeypatch.context() as mp:
        mp.setattr(RunSession, "_read_ahead", ahead)
        summary = run(write_pipeline(text), pm)
    assert summary.status == "interrupted"
    assert checkpoint(tmp_path) is None
    assert sorted(int(r.key) for r in db_rows(tmp_path / "archive.db")) == [2**53 + 1 + i for i in range(3)]
    summary = run(write_pipeline(text), pm)
    assert summary.status == "ok" and checkpoint(tmp_path) == 8
    assert_archive_exact(tmp_path, 8)


def test_no_writing_thread_outlives_its_task(pm, write_pipeline, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # The task waits for its writing thread to end (it lingers a little here after its last batch).
    import time

    from rcetl.engine.session import _BatchWriter

    real = _BatchWriter._serve

    def serve(self: _BatchWriter) -> None:
        real(self)
        time.sleep(0.3)

    monkeypatch.setattr(_BatchWriter, "_serve", serve)
    summary = run(write_pipeline(_text()), pm)
    assert summary.status == "ok"
    assert [t.name for t in threading.enumerate() if t.name.startswith("rcetl-write-")] == []


def test_the_task_result_counts_the_records_and_failed_items_of_every_batch(pm, write_pipeline,
                                                                            tmp_path: Path) -> None:
    fakesource.FAIL_DOWNLOADS.add(f"blob-{2**53 + 1 + 5}")
    results: list[Any] = []
    summary = run(write_pipeline(_text()), pm, on_task_done=results.append)
    assert summary.status == "partial" and summary.failed_items == 1
    assert summary.streams["items"].records == 7 and summary.streams["items"].files == 7
    assert summary.streams["items"].failed == 1
    [task] = results
    assert (task.status, task.records, task.failed) == ("ok", 7, 1)
    assert checkpoint(tmp_path) == 8


def test_a_stop_raised_while_settling_a_batch_moves_no_checkpoint_behind_it(pm, write_pipeline, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # The first batch's failed item cannot be queued: its settling ends with RunStopped (an
    # observer or the state store ended a wait by the stop). That stop came from a batch: the
    # batches after it may be written, but no checkpoint may pass the item neither stored nor queued.
    from rcetl.state import StateStore

    def add_failed(*args: Any, **kwargs: Any) -> None:
        raise rcetl.RunStopped("the run is stopping")

    fakesource.FAIL_DOWNLOADS.add(f"blob-{2**53 + 1}")  # the first item, in the first batch
    with monkeypatch.context() as mp:
        mp.setattr(StateStore, "add_failed", add_failed)
        summary = run(write_pipeline(_text()), pm)
    assert summary.status == "interrupted"
    assert checkpoint(tmp_path) is None
    _a_clean_rerun_completes_the_archive(pm, write_pipeline, tmp_path)
