"""Review of the batched record path (stage while the batch before is written; two batches in
flight per task): the cases its own tests left open. Each test failed before its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import rcetl
from rcetl.engine import archiver as archiver_module
from rcetl.plugins.sinks.sql.sink import SqlSink

from .archive import assert_archive_exact, checkpoint, pipeline_text, run

BATCH2 = "executor: {workers: 2, downloads: 3, batch_size: 2}"


def _text(count: int = 8, page: int = 2) -> str:
    return pipeline_text(count, page).replace("executor: {workers: 2, downloads: 3}", BATCH2)


class Killed(BaseException):
    """The process died here."""


@pytest.fixture(autouse=True)
def _instant_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archiver_module, "_sleep", lambda s: None)


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
