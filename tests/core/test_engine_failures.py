"""What the engine does when an item or a sink fails: the failed-item queue and its retry, items the
source says are gone, a sink that keeps failing (the checkpoint must not move), and exact 64-bit ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rcetl
from rcetl.engine import archiver

from . import fakeplugins, fakesource
from .archive import BIG, assert_archive_exact, checkpoint, db_rows, expected, pipeline_text, run, state

COUNT = 6
BAD = BIG + 2  # the third item


def test_a_failing_item_is_queued_the_rest_completes_and_a_later_run_retries_it(
        pm, write_pipeline, tmp_path: Path) -> None:
    path = write_pipeline(pipeline_text(COUNT))
    fakesource.FAIL_DOWNLOADS.add(f"blob-{BAD}")

    first = run(path, pm)

    assert first.status == "partial" and not first.ok
    assert first.failed_items == 1
    assert first.streams["items"].records == COUNT - 1 and first.streams["items"].failed == 1
    assert sorted(int(r.key) for r in db_rows(tmp_path / "archive.db")) == [k for k in expected(COUNT) if k != BAD]
    assert checkpoint(tmp_path) == COUNT  # the queue, not the checkpoint, remembers the bad item
    [item] = state(tmp_path).failed("engine")
    assert item.key == BAD and isinstance(item.key, int)
    assert "injected" in item.error and item.attempts == 1

    # Not due yet (backoff): an ordinary run leaves it queued and does not touch it.
    fakesource.FAIL_DOWNLOADS.clear()
    fakesource.CALLS.clear()
    second = run(path, pm)
    assert second.status == "partial" and second.failed_items == 1
    assert fakesource.CALLS == []

    # With the backoff bypassed the fixed item is archived and the queue empties.
    third = run(path, pm, retry_now=True)
    assert third.status == "ok", third.errors
    assert third.failed_items == 0
    assert third.streams["items"].retried == 1
    assert fakesource.CALLS == [f"blob-{BAD}"]
    assert state(tmp_path).failed("engine") == []
    assert_archive_exact(tmp_path, COUNT)


def test_an_item_that_fails_again_stays_queued_with_more_attempts(pm, write_pipeline, tmp_path: Path) -> None:
    path = write_pipeline(pipeline_text(COUNT))
    fakesource.FAIL_DOWNLOADS.add(f"blob-{BAD}")
    run(path, pm)
    again = run(path, pm, retry_now=True)
    assert again.status == "partial"
    [item] = state(tmp_path).failed("engine")
    assert item.attempts == 2
    assert item.next_attempt_at > item.last_failed_at  # backed off further


def test_a_due_item_is_retried_once_its_backoff_has_passed(pm, write_pipeline, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_pipeline(pipeline_text(COUNT))
    fakesource.FAIL_DOWNLOADS.add(f"blob-{BAD}")
    run(path, pm)
    fakesource.FAIL_DOWNLOADS.clear()
    import rcetl.state.store as store_module

    real_time = store_module.time.time
    monkeypatch.setattr(store_module.time, "time", lambda: real_time() + 3600)  # an hour later
    assert run(path, pm).status == "ok"
    assert state(tmp_path).failed("engine") == []


def test_the_cli_exits_non_zero_on_a_partial_run(cli, write_pipeline) -> None:
    fakesource.FAIL_DOWNLOADS.add(f"blob-{BAD}")
    path = write_pipeline(pipeline_text(COUNT))
    result = cli("run", path, "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "partial" and summary["failed_items"] == 1
    fakesource.FAIL_DOWNLOADS.clear()
    result = cli("run", path, "--retry-now", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["failed_items"] == 0


def test_an_item_the_source_no_longer_has_is_archived_as_gone_and_not_queued(
        pm, write_pipeline, tmp_path: Path) -> None:
    gone = BIG + 1
    fakesource.GONE.add(f"blob-{gone}")
    path = write_pipeline(pipeline_text(COUNT))

    summary = run(path, pm)

    assert summary.status == "ok"
    assert summary.failed_items == 0
    assert summary.streams["items"].gone == 1 and summary.streams["items"].files == COUNT - 1
    rows = {int(r.key): r for r in db_rows(tmp_path / "archive.db")}
    assert len(rows) == COUNT
    [blob] = rows[gone].archive
    assert blob["status"] == "gone" and blob["locations"] == {} and blob["sha256"] is None
    assert not list((tmp_path / "files").rglob(f"{gone}.bin"))
    assert state(tmp_path).failed("engine") == []
    # never asked for again
    fakesource.CALLS.clear()
    run(path, pm, retry_now=True)
    assert f"blob-{gone}" not in fakesource.CALLS


def test_a_sink_that_keeps_failing_transiently_never_moves_the_checkpoint(
        pm, write_pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(archiver, "_sleep", waits.append)
    flaky = pipeline_text(COUNT, sinks="""\
  db: {plugin: flaky}
  files: {plugin: filesystem, path: files}
""")
    path = write_pipeline(flaky)

    summary = run(path, pm)

    assert summary.status == "failed"
    assert any("record sink 'db'" in e and "database restarting" in e for e in summary.errors), summary.errors
    assert fakeplugins.FLAKY_CALLS == [2] * archiver.SINK_RETRIES  # the first page, tried in place
    assert waits == [1.0, 2.0]
    assert checkpoint(tmp_path) is None
    assert summary.failed_items == 0  # a sink outage is not the items' fault: nothing is queued

    # a second failing run: still nothing advanced
    assert run(path, pm).status == "failed"
    assert checkpoint(tmp_path) is None

    # the database is back: the next run archives everything from the start
    path.write_text(pipeline_text(COUNT))
    after = run(path, pm)
    assert after.status == "ok", after.errors
    assert checkpoint(tmp_path) == COUNT
    assert_archive_exact(tmp_path, COUNT)


def test_a_sink_that_recovers_within_its_retries_costs_nothing(pm, write_pipeline, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archiver, "_sleep", lambda s: None)
    from rcetl.plugins.sinks.sql.sink import SqlSink

    original = SqlSink.write
    failures = iter([True, False] * 10)

    def sometimes(self, records):  # noqa: ANN001
        if next(failures):
            raise rcetl.TransientError("deadlock (injected)")
        return original(self, records)

    monkeypatch.setattr(SqlSink, "write", sometimes)
    path = write_pipeline(pipeline_text(COUNT))
    assert run(path, pm).status == "ok"
    assert_archive_exact(tmp_path, COUNT)


def test_64_bit_ids_survive_exactly_everywhere(pm, write_pipeline, tmp_path: Path) -> None:
    fakesource.FAIL_DOWNLOADS.add(f"blob-{BIG + 5}")
    path = write_pipeline(pipeline_text(COUNT))
    run(path, pm)
    assert float(BIG) != BIG  # through a float, the first id would become its neighbour
    rows = db_rows(tmp_path / "archive.db")
    assert {int(r.key) for r in rows} == set(expected(COUNT)) - {BIG + 5}
    for row in rows:
        assert row.key == str(row.raw["id"]) and row.key_type == "int"
    files = {p.name for p in (tmp_path / "files").rglob("*.bin")}
    assert f"{BIG}.bin" in files and f"{BIG + 4}.bin" in files
    [queued] = state(tmp_path).failed("engine")
    assert queued.key == BIG + 5
    record = rcetl.Record.from_json(json.loads(json.dumps(queued.record["record"])))
    assert record.key == BIG + 5 and record.data["id"] == BIG + 5
    assert record.blobs[0].variables["id"] == BIG + 5


def test_a_queued_item_is_downloaded_again_whatever_the_blob_ledger_says(pm, write_pipeline, tmp_path: Path) -> None:
    """An item `rcetl verify` queued (its stored bytes failed a check) must get a fresh download on
    retry: the ledger's record of a binary every sink "holds" is exactly what verify distrusts."""
    path = write_pipeline(pipeline_text(COUNT))
    assert run(path, pm).status == "ok"
    stream = fakesource.ItemsStream(fakesource.FakeConfig(count=COUNT, page=2, blob_size=3000))
    record = next(r for r in stream.read("", None, rcetl.RunWindow())
                  if isinstance(r, rcetl.Record) and r.key == BAD)
    store = state(tmp_path)
    store.add_failed("engine", "items", record.account, record.key,
                     {"record": record.to_json(), "connection": "fake", "source": "items"},
                     "stored bytes fail the content check (queued by verify)")
    fakesource.CALLS.clear()

    again = run(path, pm, retry_now=True)

    assert again.status == "ok", again.errors
    assert fakesource.CALLS == [f"blob-{BAD}"]  # the queued one, and only it
    assert state(tmp_path).failed("engine") == []
    assert_archive_exact(tmp_path, COUNT)
