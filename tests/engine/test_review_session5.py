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
        with pytest.raises(SinkUnavailable):
            archiver.archive(_items(2, stream, blob_sink, record_sink))
        blob_sink.healed = True
        result = archiver.archive(_items(2, stream, blob_sink, record_sink))
    assert [a.record.key for a in result.archived] == ["0", "1"] and not result.failed
    assert sorted(b for what, b in events if what == "store") == ["recording-0", "recording-1"]
