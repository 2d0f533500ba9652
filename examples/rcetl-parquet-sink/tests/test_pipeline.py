"""The example as its users see it: DuckDB reads the files the sink wrote from a sandbox run and,
through the dedupe view, gets the ground truth's counts; a re-run adds no duplicate; the plugin's
own ``rcetl parquet`` commands work."""

from __future__ import annotations

import json

import pytest

duckdb = pytest.importorskip("duckdb")

from rcetl_parquet_sink.sink import DEDUPE_SQL  # noqa: E402


def counts(root: str) -> dict[str, int]:
    sql = f"SELECT stream, count(*) FROM ({DEDUPE_SQL.format(root=root)}) GROUP BY stream"
    return dict(duckdb.sql(sql).fetchall())


def test_duckdb_reads_the_files_and_gets_the_ground_truth(rcetl_pipeline) -> None:
    run = rcetl_pipeline(sinks={"example": {"plugin": "parquet", "path": "parquet"},
                                "files": {"plugin": "filesystem", "path": "files"}})
    assert run.summary.status == "ok", run.summary.errors
    root = str(run.folder / "parquet")
    assert counts(root) == run.expected_counts()

    files = sorted((run.folder / "parquet").rglob("*.parquet"))
    assert files and all(f.parent.name.startswith("date=") and f.parent.parent.name.startswith("stream=")
                         for f in files)
    # exact 64-bit ids, straight from SQL
    ids = duckdb.sql(f"SELECT key, data FROM ({DEDUPE_SQL.format(root=root)}) WHERE stream = 'message-store'").fetchall()
    assert ids and all(json.loads(data)["id"] == int(key) for key, data in ids)

    again = run.rerun(full_refresh=True)  # everything delivered again
    assert again.summary.status == "ok"
    assert sorted((run.folder / "parquet").rglob("*.parquet")) == files, "a re-delivered batch wrote a file"
    assert counts(root) == run.expected_counts()
    run.assert_archived("example")


def test_the_plugin_adds_its_commands(rcetl_pipeline) -> None:
    from typer.testing import CliRunner

    from rcetl.cli.main import app
    from rcetl.registry import get_plugin_manager

    run = rcetl_pipeline(sinks={"example": {"plugin": "parquet", "path": "parquet"}})
    root = str(run.folder / "parquet")
    get_plugin_manager().extend_cli(app)  # the plugin's `rcetl parquet` commands
    view = CliRunner().invoke(app, ["parquet", "view", root])
    assert view.exit_code == 0 and "row_number()" in view.output and root in view.output
    listed = CliRunner().invoke(app, ["parquet", "files", root])
    assert listed.exit_code == 0
    assert sorted(listed.output.split()) == sorted(str(p) for p in (run.folder / "parquet").rglob("part-*.parquet"))
