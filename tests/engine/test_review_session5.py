"""Review of the batch archiver's stage/commit split: the cases its own tests left open. Each test
failed before its fix."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import rcetl
from rcetl.engine import archiver as archiver_module
from rcetl.engine.archiver import SinkUnavailable
from rcetl.engine.ledger import BlobLedger

from .test_binary_path import BlobSink, RecordSink, Stream, _archiver, _items


class FailingStores(BlobSink):
    """Fails every store (a transient fault) until ``healed``."""

    healed = False

    def store(self, blob: rcetl.SpooledBlob) -> rcetl.StoredBlob:
        if not self.healed:
            raise rcetl.TransientError("bucket unreachable (injected)")
        return super().store(blob)


def test_a_binary_whose_store_raised_is_not_shared_with_a_later_batch(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # A blob sink outage fails the batch (SinkUnavailable); once the sink is back, a later batch
    # naming the same binary (the account's and the extension's call log name one recording) must
    # store it again, not share the failed download left in the in-flight table.
    monkeypatch.setattr(archiver_module, "_sleep", lambda s: None)
    events: list[tuple[str, Any]] = []
    stream, blob_sink, record_sink = Stream(), FailingStores(events), RecordSink(events)
    with ThreadPoolExecutor(4) as pool:
        archiver = _archiver(tmp_path, pool, None)
        first = _items(2, stream, blob_sink, record_sink)
        with pytest.raises(SinkUnavailable):
            archiver.archive(first)
        for item in first:  # the first batch's downloads have all ended before the sink is back
            for fut in (item.blob_futures or {}).values():
                fut.exception()
        blob_sink.healed = True
        result = archiver.archive(_items(2, stream, blob_sink, record_sink))
    assert [a.record.key for a in result.archived] == ["0", "1"] and not result.failed
    assert sorted(b for what, b in events if what == "store") == ["recording-0", "recording-1"]


def test_a_binary_named_while_its_batch_is_synced_shares_the_download_finished(tmp_path: Path) -> None:
    # Deterministic form of test_binary_path's race: the second record's download has ended before
    # the first batch is remembered; it must have shared the first's (one request), which it can
    # only do if the batch's binaries stay in the in-flight table until the ledger holds them.
    events: list[tuple[str, Any]] = []
    stream, blob_sink, record_sink = Stream(), BlobSink(events), RecordSink(events)
    first, again = _items(1, stream, blob_sink, record_sink), _items(1, stream, blob_sink, record_sink)
    ledger = BlobLedger(f"sqlite:///{tmp_path / 'state.db'}", "p")
    with ThreadPoolExecutor(4) as pool:
        archiver = _archiver(tmp_path, pool, ledger)
        real = archiver._remember

        def remember(batch: Any, results: Any) -> None:
            archiver.start(again[0])
            for fut in (again[0].blob_futures or {}).values():
                fut.result()
            real(batch, results)

        archiver._remember = remember  # type: ignore[method-assign]
        archiver.archive(first)
        archiver._remember = real  # type: ignore[method-assign]
        result = archiver.archive(again)
    ledger.close()
    assert stream.downloads == ["recording-0"]
    assert [b.status for a in result.archived for b in a.blobs] == ["stored"]
