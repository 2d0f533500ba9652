"""The run options reach the streams: ``--stream`` picks streams, ``--since``/``--until`` become the
run window, ``--full-refresh`` drops checkpoints (without duplicating anything), ``--dry-run`` plans
and writes nothing."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from . import fakeplugins, fakesource
from .archive import assert_archive_exact, pipeline_text
from .conftest import tree

PAIR = """\
pipeline: plumbing
fake: {}
sources:
  pair: {count: 3}
sinks:
  log: {plugin: rec_records}
"""


def written_keys() -> list[str]:
    return sorted(key for what, detail in fakeplugins.EVENTS if what == "write" for _, key, _ in detail)


def reads() -> dict[str, dict]:
    return {r["stream"]: r for r in fakeplugins.READS}


def test_stream_option_runs_only_that_stream(cli, write_pipeline) -> None:
    path = write_pipeline(PAIR)
    result = cli("run", path, "--stream", "beta")
    assert result.exit_code == 0, result.output
    assert set(reads()) == {"beta"}
    assert written_keys() == ["beta-0", "beta-1", "beta-2"]


def test_stream_option_is_repeatable(cli, write_pipeline) -> None:
    path = write_pipeline(PAIR)
    assert cli("run", path, "-s", "alpha", "-s", "beta").exit_code == 0
    assert set(reads()) == {"alpha", "beta"}


def test_an_unknown_stream_is_refused_before_anything_runs(cli, write_pipeline, tmp_path: Path) -> None:
    path = write_pipeline(PAIR)
    before = tree(tmp_path)
    result = cli("run", path, "--stream", "gamma")
    assert result.exit_code == 2
    assert "no stream 'gamma'" in result.stderr and "alpha, beta" in result.stderr
    assert fakeplugins.READS == []
    assert tree(tmp_path) == before


def test_since_and_until_become_the_run_window(cli, write_pipeline) -> None:
    path = write_pipeline(PAIR)
    result = cli("run", path, "--since", "2025-03-01", "--until", "2025-04-01T12:00:00Z")
    assert result.exit_code == 0, result.output
    window = reads()["alpha"]["window"]
    assert window.since == datetime(2025, 3, 1, tzinfo=timezone.utc)
    assert window.until == datetime(2025, 4, 1, 12, tzinfo=timezone.utc)
    assert window.full_refresh is False


@pytest.mark.parametrize("value", ["yesterday", "2025-13-01"])
def test_a_bad_date_is_a_usage_error(cli, write_pipeline, value: str) -> None:
    result = cli("run", write_pipeline(PAIR), "--since", value)
    assert result.exit_code == 2
    assert "is not a date" in result.stderr


def test_checkpoints_resume_and_full_refresh_ignores_them(cli, write_pipeline) -> None:
    path = write_pipeline(PAIR)
    assert cli("run", path).exit_code == 0
    assert reads()["alpha"]["checkpoint"] is None

    fakeplugins.reset()
    assert cli("run", path).exit_code == 0
    assert reads()["alpha"]["checkpoint"] == 3
    assert written_keys() == []  # nothing new

    fakeplugins.reset()
    assert cli("run", path, "--full-refresh").exit_code == 0
    assert reads()["alpha"]["checkpoint"] is None and reads()["alpha"]["window"].full_refresh
    assert len(written_keys()) == 6


def test_full_refresh_rewrites_without_duplicates(pm, cli, write_pipeline, tmp_path: Path) -> None:
    path = write_pipeline(pipeline_text(6, name="plumbing"))
    assert cli("run", path).exit_code == 0
    fakesource.CALLS.clear()
    again = cli("run", path, "--full-refresh")
    assert again.exit_code == 0, again.output
    # Every record read again, but no binary downloaded again: each sink holds it with its checksum.
    assert fakesource.CALLS == []
    assert "6 download request(s) saved" in again.stdout
    assert_archive_exact(tmp_path, 6)  # ...and stored once
    forced = cli("run", path, "--full-refresh", "--redownload")
    assert forced.exit_code == 0, forced.output
    assert len(fakesource.CALLS) == 6  # unless asked
    assert_archive_exact(tmp_path, 6)


def test_dry_run_prints_a_plan_and_writes_nothing(cli, write_pipeline, tmp_path: Path) -> None:
    path = write_pipeline(pipeline_text(6, name="plumbing"))
    before = tree(tmp_path)
    result = cli("run", path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "plan for plumbing" in result.stdout
    assert "6 items from #0" in result.stdout
    assert "sink db (sqlite): streams items" in result.stdout
    assert fakesource.CALLS == []
    assert tree(tmp_path) == before  # no state db, no .rcetl, no spool, no archive


def test_dry_run_after_a_run_reads_the_checkpoints(cli, write_pipeline, tmp_path: Path) -> None:
    path = write_pipeline(pipeline_text(6, name="plumbing"))
    assert cli("run", path).exit_code == 0
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    result = cli("run", path, "--dry-run")
    assert "0 items from #6" in result.stdout
    assert cli("run", path, "--dry-run", "--full-refresh").stdout.count("6 items from #0") == 1
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert set(after) == set(before)
