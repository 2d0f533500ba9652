"""The sandbox's small data set (the demo's) archived into the lake by real pipeline runs, read back
by DuckDB with Hive partitioning: counts per stream and day and every record's exact JSON and typed
columns equal the ground truth; a re-run changes no file; the same dataset on S3 (moto) reads back.

DuckDB reads S3 here through a pyarrow dataset on pyarrow's S3 file system: DuckDB's own httpfs
extension is downloaded at run time from DuckDB's extension site, which these machines cannot reach.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stores import default_sandbox, run, verify_clean, write_pipeline
from tests.services import require_module

from .cases import create_bucket, final_run, kill_runs, s3_options

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def day(text: str) -> str:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).strftime("%Y-%m-%d")


def truth_by_stream_and_day(gt: dict[str, Any]) -> Counter:
    acct = gt["accounts"][0]
    calls = {c["id"]: c for c in acct["call_log"]}
    out = Counter(("call-log", day(c["startTime"])) for c in acct["call_log"])
    out.update(("recording", day(calls[r["call_id"]]["startTime"])) for r in acct["recordings"])
    out.update(("message-store", day(m["creationTime"])) for m in acct["messages"])
    return out


def listing(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file()}


def check_against_truth(con: Any, source: str, gt: dict[str, Any]) -> None:
    rows = con.sql(f"SELECT stream, CAST(date AS VARCHAR), count(*) FROM {source} GROUP BY ALL").fetchall()
    assert Counter({(s, d): n for s, d, n in rows}) == truth_by_stream_and_day(gt)
    acct = gt["accounts"][0]
    calls = {c["id"]: c for c in acct["call_log"]}
    held = {k: (json.loads(raw), st, direction) for k, raw, st, direction in con.sql(
        f"SELECT key, raw, start_time, direction FROM {source} WHERE stream = 'call-log'").fetchall()}
    assert set(held) == set(calls)
    for cid, call in calls.items():
        raw, start, direction = held[cid]
        assert {k: v for k, v in raw.items() if k != "uri"} == {k: v for k, v in call.items() if k != "uri"}
        assert start == datetime.fromisoformat(call["startTime"].replace("Z", "+00:00"))
        assert direction == call["direction"]
    messages = {m["id"]: m for m in acct["messages"]}
    got = con.sql(f"SELECT id, key_json, raw, len(attachments) FROM {source} WHERE stream = 'message-store'").fetchall()
    assert {r[0] for r in got} == set(messages)
    for mid, key_json, raw, n_atts in got:
        data = json.loads(raw)
        assert json.loads(key_json) == mid == data["id"], "a 64-bit id changed on the way"
        assert n_atts == len(messages[mid].get("attachments") or [])


def lake_pipeline(tmp_path: Path, sb: Any, lake: dict[str, Any]) -> Path:
    """A pipeline reading the sandbox into the lake sink ``lake`` and the binaries into a folder."""
    return write_pipeline(tmp_path, sb, {"lake": {"plugin": "lake", **lake},
                                         "files": {"plugin": "filesystem", "path": str(tmp_path / "files"),
                                                   "fsync": False}})


def test_duckdb_reads_the_lake_as_the_ground_truth_and_a_rerun_changes_nothing(tmp_path: Path,
                                                                               monkeypatch) -> None:
    duckdb = require_module("duckdb")
    monkeypatch.setenv("RCETL_HOME", str(tmp_path / "home"))
    with default_sandbox() as sb:
        gt = sb.ground_truth()
        lake = tmp_path / "lake"
        path = lake_pipeline(tmp_path, sb, {"path": str(lake)})
        first = run(path)
        assert first.status == "ok", first.errors
        source = f"read_parquet('{lake}/*/*/*.parquet', hive_partitioning = true, union_by_name = true)"
        check_against_truth(duckdb.connect(), source, gt)
        assert not [p for p in lake.rglob("*") if p.name.startswith(".")], "a pending file is visible"

        before = listing(lake)
        again = run(path, full_refresh=True)
        assert again.status == "ok", again.errors
        assert listing(lake) == before, "a re-run rewrote or added files"
        check_against_truth(duckdb.connect(), source, gt)
        verify_clean(path, tmp_path / "home")  # rcetl verify reads the lake back through archived()


def test_the_same_dataset_on_s3_reads_back_in_duckdb(tmp_path: Path, s3_url: str, monkeypatch) -> None:
    duckdb = require_module("duckdb")
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    monkeypatch.setenv("RCETL_HOME", str(tmp_path / "home"))
    bucket, options = create_bucket(s3_url, "rcetl-lake-e2e"), s3_options(s3_url)
    with default_sandbox() as sb:
        gt = sb.ground_truth()
        path = lake_pipeline(tmp_path, sb, {"path": f"s3://{bucket}/lake", "filesystem_options": options})
        first = run(path)
        assert first.status == "ok", first.errors
        # One schema per stream (docs/sinks/lake.md): the dataset reads them unified, as union_by_name does.
        import pyarrow as pa

        from rcetl.plugins.sinks.lake.schema import schema_for

        keys = pa.schema([("stream", pa.string()), ("date", pa.string())])
        unified = pa.unify_schemas([schema_for(s).remove_metadata() for s in ("call-log", "recording", "message-store")]
                                   + [keys])
        dataset = pads.dataset(f"{bucket}/lake", filesystem=pafs.S3FileSystem(**options), format="parquet",
                               schema=unified, partitioning=pads.partitioning(keys, flavor="hive"))
        con = duckdb.connect()
        con.register("lake", dataset)
        check_against_truth(con, "lake", gt)


def test_sigkill_mid_run_then_rerun_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    import os

    duckdb = require_module("duckdb")
    lake = tmp_path / "lake"
    with default_sandbox() as sb:
        gt = sb.ground_truth()
        path = lake_pipeline(tmp_path, sb, {"path": str(lake)})
        env = {**os.environ, "RCETL_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
        acct = gt["accounts"][0]
        binaries = len(acct["recordings"]) + sum(len(m.get("attachments") or []) for m in acct["messages"])
        files = tmp_path / "files"  # the pipeline's binaries: a run's progress, however fast it is
        made = kill_runs(path, env, kills=int(os.environ.get("RCETL_CRASH_KILLS", "6")), seed=21,
                         progress=lambda: sum(1 for p in files.rglob("*") if p.is_file()), total=binaries)
        assert made >= 3, f"only {made} kills landed"
        final_run(path, env)
    source = f"read_parquet('{lake}/*/*/*.parquet', hive_partitioning = true, union_by_name = true)"
    con = duckdb.connect()
    check_against_truth(con, source, gt)
    dupes = con.sql(f"SELECT stream, account, key_json FROM {source} GROUP BY ALL HAVING count(*) > 1").fetchall()
    assert not dupes
    assert not [p for p in lake.rglob("*") if p.name.startswith(".")], "a killed writer's pending file is visible"
