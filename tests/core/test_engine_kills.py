"""Invariant 1: whatever step a run is killed at, re-running leaves every record and binary exactly once
in every sink. Invariant 2: a record is never written before its binaries are stored.

A kill is simulated by raising a BaseException subclass (nothing in the engine catches it, as nothing
survives a SIGKILL) at the Nth call of one step, before or after the step's real work: a download, a
blob store, a record write, a checkpoint save. The re-run has no injection; the archive is then
compared with what the fake source holds, id by id and byte by byte.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rcetl.plugins.sinks.filesystem import FilesystemSink
from rcetl.plugins.sinks.sql.sink import SqlSink
from rcetl.state import StateStore

from . import fakeplugins, fakesource
from .archive import assert_archive_exact, checkpoint, pipeline_text, run

COUNT, PAGE = 6, 2  # 6 downloads, 6 stores, 3 record writes (one per page), 3 checkpoints


class Killed(BaseException):
    """The process died here."""


STEPS: dict[str, tuple[Any, str, int]] = {
    # step -> (class, method, how many calls a clean run makes)
    "download": (fakesource.ItemsStream, "download", COUNT),
    "blob-store": (FilesystemSink, "store", COUNT),
    "record-write": (SqlSink, "write_prepared", COUNT // PAGE),  # the engine's write of a prepared batch
    "checkpoint": (StateStore, "put_checkpoint", COUNT // PAGE),
}


def kill_at(monkeypatch: pytest.MonkeyPatch, step: str, n: int, when: str) -> Callable[[], int]:
    cls, method, _ = STEPS[step]
    original = getattr(cls, method)
    calls = 0
    lock = threading.Lock()

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        with lock:
            calls += 1
            mine = calls
        if mine == n and when == "before":
            raise Killed(f"{step} #{n}")
        result = original(*args, **kwargs)
        if mine == n and when == "after":
            raise Killed(f"after {step} #{n}")
        return result

    monkeypatch.setattr(cls, method, wrapper)
    return lambda: calls


CASES = [(step, n, when) for step, (_, _, total) in STEPS.items() for n in range(1, total + 1)
         for when in ("before", "after")]


@pytest.mark.parametrize(("step", "n", "when"), CASES, ids=[f"{s}-{n}-{w}" for s, n, w in CASES])
def test_kill_then_rerun_archives_everything_exactly_once(step: str, n: int, when: str, pm, write_pipeline,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_pipeline(pipeline_text(COUNT, PAGE))
    with monkeypatch.context() as mp:
        kill_at(mp, step, n, when)
        with pytest.raises(Killed):
            run(path, pm)
    position = checkpoint(tmp_path)
    assert position is None or position <= COUNT

    summary = run(path, pm)

    assert summary.status == "ok", summary.errors
    assert summary.failed_items == 0
    assert checkpoint(tmp_path) == COUNT
    assert_archive_exact(tmp_path, COUNT)


def test_the_checkpoint_never_passes_what_is_stored(pm, write_pipeline, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Killed at the second record write: only the first page can be covered by the checkpoint.
    path = write_pipeline(pipeline_text(COUNT, PAGE))
    kill_at(monkeypatch, "record-write", 2, "before")
    with pytest.raises(Killed):
        run(path, pm)
    assert checkpoint(tmp_path) == PAGE


def test_a_clean_run_archives_everything(pm, write_pipeline, tmp_path: Path) -> None:
    path = write_pipeline(pipeline_text(COUNT, PAGE))
    summary = run(path, pm)
    assert summary.status == "ok"
    assert summary.streams["items"].records == COUNT and summary.streams["items"].files == COUNT
    assert_archive_exact(tmp_path, COUNT)
    # a re-run changes nothing and downloads nothing
    fakesource.CALLS.clear()
    again = run(path, pm)
    assert again.status == "ok"
    assert sum(s.records for s in again.streams.values()) == 0
    assert fakesource.CALLS == []
    assert_archive_exact(tmp_path, COUNT)


# --- invariant 2: binaries before records ------------------------------------------------------------


RECORDER = """\
  log: {plugin: rec_records}
  blobs: {plugin: rec_blobs}
"""


@pytest.mark.parametrize("batch_size", [1, 3, 500])
def test_a_record_is_written_only_after_its_binaries_are_stored(batch_size: int, pm, write_pipeline) -> None:
    fakesource.FAIL_DOWNLOADS.add(f"blob-{2**53 + 1 + 4}")  # its record must never be written
    text = pipeline_text(10, 3, sinks=RECORDER).replace("downloads: 3}", f"downloads: 4, batch_size: {batch_size}}}")
    path = write_pipeline(text)

    summary = run(path, pm)

    assert summary.status == "partial"
    stored_at: dict[str, int] = {}
    written: list[Any] = []
    for index, (what, detail) in enumerate(fakeplugins.EVENTS):
        if what == "store":
            stored_at.setdefault(detail, index)
            continue
        for _stream, key, blob_ids in detail:
            written.append(key)
            assert blob_ids, f"record {key} was written without its binary"
            for blob_id in blob_ids:
                assert stored_at.get(blob_id, index) < index, f"record {key} written before {blob_id} was stored"
    assert sorted(written) == [2**53 + 1 + i for i in range(10) if i != 4]
