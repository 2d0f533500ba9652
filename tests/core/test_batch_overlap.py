"""A run stages the next batch (its binaries stored, its rows made: ``RecordSink.prepare``) while
the record sinks write the batch before; each checkpoint is committed only once its batch is
written (invariant 1), and the records are written in the order they were read."""

from __future__ import annotations

import threading
from typing import Any

from rcetl.plugins.sinks.sql.sink import SqlSink

from .archive import assert_archive_exact, checkpoint, pipeline_text, run


def test_the_next_batch_is_prepared_while_the_last_is_written(pm, write_pipeline, tmp_path, monkeypatch) -> None:
    path = write_pipeline(pipeline_text(8, 2).replace("executor: {workers: 2, downloads: 3}",
                                                       "executor: {workers: 2, downloads: 3, batch_size: 2}"))
    prepares: list[int] = []  # how many batches were prepared, as each prepare starts
    cond = threading.Condition()
    overlapped: list[bool] = []
    order: list[list[Any]] = []
    checkpoints_seen: list[Any] = []
    real_prepare, real_write = SqlSink.prepare, SqlSink.write_prepared

    def prepare(self: SqlSink, records: Any) -> Any:
        with cond:
            prepares.append(len(prepares) + 1)
            cond.notify_all()
        return real_prepare(self, records)

    def write_prepared(self: SqlSink, batch: Any) -> Any:
        n = len(order) + 1
        # Batch n+1 is prepared while batch n is being written; a run that wrote one batch at a
        # time would prepare it only after this returned (the wait would time out).
        with cond:
            overlapped.append(cond.wait_for(lambda: len(prepares) > n, timeout=2))
        checkpoints_seen.append(checkpoint(tmp_path))
        order.append([k for _, k in batch.keys])
        return real_write(self, batch)

    monkeypatch.setattr(SqlSink, "prepare", prepare)
    monkeypatch.setattr(SqlSink, "write_prepared", write_prepared)
    run(path, pm)
    assert_archive_exact(tmp_path, 8)
    assert len(order) == 4 and overlapped[:3] == [True, True, True], overlapped  # the last has no next
    keys = [k for batch in order for k in batch]
    assert keys == sorted(keys, key=int)  # written in the order read
    # While batch n is written, the checkpoint has not passed it: at most the pages before it.
    for n, seen in enumerate(checkpoints_seen):
        assert seen is None or int(seen) <= int(order[n][0]), (n, seen, order[n])


def test_records_with_binaries_are_batched_and_read_ahead_per_download_slot(pm, write_pipeline, tmp_path,
                                                                             monkeypatch) -> None:
    """A record with binaries is held, with its download, until its batch is written: batches of
    them (and the records read ahead) are bounded by the download slots (32 per slot), not by
    ``batch_size`` (1,000 such records in each of four batches in memory cost ~25 MB of peak RSS)."""
    from rcetl.engine import session
    from rcetl.engine.archiver import BatchArchiver

    path = write_pipeline(pipeline_text(100, 50).replace("executor: {workers: 2, downloads: 3}",
                                                          "executor: {workers: 1, downloads: 1}"))
    started = 0
    lock = threading.Condition()
    real_start, real_prepare, real_store = BatchArchiver.start, SqlSink.prepare, BatchArchiver._store_one
    prepared = 0
    ahead: list[int] = []  # downloads started beyond the records prepared, as each batch is prepared
    sizes: list[int] = []
    waited: list[Any] = []

    def start(self: BatchArchiver, item: Any) -> Any:
        nonlocal started
        with lock:
            started += item.blob_futures is None and bool(item.record.blobs)  # (staging calls it again)
            lock.notify_all()
        return real_start(self, item)

    def slow_first_download(self: BatchArchiver, item: Any, ref: Any) -> Any:
        # The first download lasts until the reader has read everything or given up (1 s): a
        # reader bounded by the download slots gives up; one bounded only by batch_size reads all.
        with lock:
            first = not waited
            waited.append(ref)
        if first:
            with lock:
                lock.wait_for(lambda: started >= 100, timeout=1.0)
        return real_store(self, item, ref)

    def prepare(self: SqlSink, records: Any) -> Any:
        nonlocal prepared
        records = list(records)
        with lock:
            prepared += len(records)
            ahead.append(started - prepared)
        sizes.append(len(records))
        return real_prepare(self, records)

    trims: list[int] = []
    monkeypatch.setattr(session, "_trim_malloc", lambda: trims.append(1))
    monkeypatch.setattr(BatchArchiver, "start", start)
    monkeypatch.setattr(BatchArchiver, "_store_one", slow_first_download)
    monkeypatch.setattr(SqlSink, "prepare", prepare)
    run(path, pm)
    assert_archive_exact(tmp_path, 100)
    per_batch = session.BINARY_RECORDS_PER_DOWNLOAD  # x 1 download
    assert sizes == [per_batch, 50 - per_batch] * 2  # cut at 32, and at each page's checkpoint
    assert len(trims) == len(sizes)  # the download threads' freed buffers leave their arenas per batch
    # read ahead: one batch's worth in the queue, and one more started while waiting for a place
    assert max(ahead) <= per_batch + 1, ahead


def test_records_with_binaries_but_no_blob_sink_are_batched_by_batch_size(pm, write_pipeline, tmp_path,
                                                                          monkeypatch) -> None:
    """Without a blob sink nothing is downloaded, so nothing is held: batches follow ``batch_size``
    (and the pages' checkpoints), not the download slots."""
    path = write_pipeline(pipeline_text(100, 50, sinks='  db: {plugin: sqlite, url: "sqlite:///archive.db"}\n')
                          .replace("executor: {workers: 2, downloads: 3}", "executor: {workers: 1, downloads: 1}"))
    sizes: list[int] = []
    real_prepare = SqlSink.prepare

    def prepare(self: SqlSink, records: Any) -> Any:
        records = list(records)
        sizes.append(len(records))
        return real_prepare(self, records)

    from rcetl.engine import session

    trims: list[int] = []
    monkeypatch.setattr(session, "_trim_malloc", lambda: trims.append(1))
    monkeypatch.setattr(SqlSink, "prepare", prepare)
    run(path, pm)
    assert sizes == [50, 50] and trims == []
