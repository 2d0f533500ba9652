"""The lake as its users see it: DuckDB reads the files the sink wrote from a sandbox run and
(deduplicating by key) gets the ground truth's counts; re-runs add no duplicate; compaction keeps
the view unchanged."""

from __future__ import annotations

import json

import pytest

duckdb = pytest.importorskip("duckdb")

from rcetl_parquet_sink.sink import DEDUPE_SQL  # noqa: E402


def counts(root: str) -> dict[str, int]:
    sql = f"SELECT stream, count(*) FROM ({DEDUPE_SQL.format(root=root)}) GROUP BY stream"
    return dict(duckdb.sql(sql).fetchall())


def test_duckdb_reads_the_lake_and_gets_the_ground_truth(rcetl_pipeline) -> None:
    run = rcetl_pipeline(sinks={"lake": {"plugin": "parquet", "path": "lake"},
                                "files": {"plugin": "filesystem", "path": "files"}})
    assert run.summary.status == "ok", run.summary.errors
    root = str(run.folder / "lake")
    assert counts(root) == run.expected_counts()

    files = sorted((run.folder / "lake").rglob("*.parquet"))
    assert files and all(f.parent.name.startswith("date=") and f.parent.parent.name.startswith("stream=")
                         for f in files)

    # exact 64-bit ids and the archive locations, straight from SQL
    ids = duckdb.sql(f"SELECT key, data FROM ({DEDUPE_SQL.format(root=root)}) WHERE stream = 'message-store'").fetchall()
    assert all(json.loads(data)["id"] == int(key) for key, data in ids)
    located = duckdb.sql(f"SELECT count(*) FROM ({DEDUPE_SQL.format(root=root)}) "
                         "WHERE stream = 'recording' AND archive LIKE '%\"files\":%'").fetchall()[0][0]
    assert located == sum(1 for a in run.ground_truth["accounts"] for r in a["recordings"] if r["available"])

    again = run.rerun(full_refresh=True)  # everything delivered again
    assert again.summary.status == "ok"
    assert counts(root) == run.expected_counts()  # the view still has each key once
    run.assert_archived("lake")


def test_compaction_keeps_the_view(rcetl_pipeline) -> None:
    from typer.testing import CliRunner

    from rcetl.cli.main import app

    run = rcetl_pipeline(sinks={"lake": {"plugin": "parquet", "path": "lake"}})
    run.rerun(full_refresh=True)
    root = str(run.folder / "lake")
    before = counts(root)
    sink = run.open_sink("lake")
    for stream in before:
        sink.compact(stream)
    assert counts(root) == before == run.expected_counts()
    # one file per partition after compaction
    partitions = {f.parent for f in (run.folder / "lake").rglob("*.parquet")}
    assert len(list((run.folder / "lake").rglob("*.parquet"))) == len(partitions)

    from rcetl.registry import get_plugin_manager

    get_plugin_manager().extend_cli(app)  # the plugin's `rcetl parquet` commands
    result = CliRunner().invoke(app, ["parquet", "view", root])
    assert result.exit_code == 0 and "row_number()" in result.output
