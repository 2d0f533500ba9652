"""Record writes in two steps (``RecordSink.prepare``, then ``write_prepared``) and a run that
stages batch N+1 while batch N is written: the mapping of one batch overlaps the store's work on
the last, and nothing of the invariants moves (checkpoints after their batch, failed items queued
before the checkpoint passes them, a refused record isolated)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import rcetl
from rcetl.engine.archiver import BatchArchiver, Routed
from rcetl.run import RunStats


class Stream(rcetl.Stream):
    name = "things"

    def partitions(self) -> list[str]:
        return [""]

    def read(self, partition: str, checkpoint: Any, window: rcetl.RunWindow):  # noqa: ANN201
        return iter(())

    def download(self, ref: rcetl.BlobRef, out: rcetl.BlobOutput) -> None:
        raise AssertionError("records without binaries")


class PreparingSink(rcetl.RecordSink):
    """Prepares on the caller's thread, writes on whichever thread the engine picks; notes both."""

    def __init__(self, refuse: str | None = None) -> None:
        super().__init__("db", rcetl.PluginConfig(), None)  # type: ignore[arg-type]
        self.refuse = refuse
        self.events: list[tuple[str, list[str], str]] = []

    def prepare(self, records: Any) -> list[str]:
        keys = [r.record.key for r in records]
        self.events.append(("prepare", keys, threading.current_thread().name))
        if self.refuse in keys:
            raise rcetl.PermanentError(f"cannot map {self.refuse}")
        return keys

    def write_prepared(self, prepared: list[str]) -> int:
        self.events.append(("write", prepared, threading.current_thread().name))
        return len(prepared)

    def write(self, records: Any) -> int:
        return self.write_prepared(self.prepare(records))


def _batch(sink: PreparingSink, keys: list[str]) -> list[Routed]:
    return [Routed(rcetl.Record("things", k, {"id": k}, account="acc"), Stream(), {"connection": "c", "source": "s"},
                   [("db", sink)], []) for k in keys]


def test_stage_prepares_and_commit_writes_what_was_prepared(tmp_path: Path) -> None:
    sink = PreparingSink()
    with ThreadPoolExecutor(2) as pool:
        archiver = BatchArchiver(tmp_path, pool, RunStats())
        staged = archiver.stage(_batch(sink, ["a", "b"]))
        assert [e[:2] for e in sink.events] == [("prepare", ["a", "b"])]  # prepared, nothing written yet
        result = archiver.commit(staged)
    assert [e[:2] for e in sink.events] == [("prepare", ["a", "b"]), ("write", ["a", "b"])]
    assert [a.record.key for a in result.archived] == ["a", "b"] and not result.failed


def test_a_batch_whose_prepare_fails_is_written_one_by_one_and_only_the_refused_record_fails(tmp_path: Path) -> None:
    sink = PreparingSink(refuse="b")
    with ThreadPoolExecutor(2) as pool:
        archiver = BatchArchiver(tmp_path, pool, RunStats())
        result = archiver.archive(_batch(sink, ["a", "b", "c"]))
    assert [a.record.key for a in result.archived] == ["a", "c"]
    assert [(r.record.key, "cannot map b" in why) for r, why in result.failed] == [("b", True)]
    assert [e[1] for e in sink.events if e[0] == "write"] == [["a"], ["c"]]
