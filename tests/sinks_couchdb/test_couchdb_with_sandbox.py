"""The sandbox's small data set (the demo's) archived into CouchDB, records and binaries in one
database, by real pipeline runs: every record once with its exact JSON, every binary an attachment
whose bytes hash to the ground truth; a ``--full-refresh`` re-run adds no revision to any document;
runs SIGKILLed at random moments, then one more run: nothing lost, nothing duplicated, no upload
left half done; ``rcetl verify --json`` is clean."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from rcetl.testing import make_context, plugin_manager
from tests.e2e.stores import default_sandbox, files_uploaded, run, verify_clean, write_pipeline
from tests.reliability.archive_check import check_archive
from tests.sinks_lake.cases import final_run, kill_runs

from .conftest import unique_db

pytestmark = [pytest.mark.slow, pytest.mark.integration]


class Opened:
    """The pipeline's sink ``name`` opened on the same database, closed at the end."""

    def __init__(self) -> None:
        self.sinks: list[Any] = []

    def open(self, path: Path, name: str) -> Any:
        from rcetl.config import load_pipeline

        conf = next(s for s in load_pipeline(path, pm=plugin_manager()).sinks if s.name == name)
        sink = conf.build(make_context(path.parent))
        sink.open()
        self.sinks.append(sink)
        return sink

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def revisions(sink: Any) -> dict[str, str]:
    rows = sink.client.json("GET", "_all_docs")["rows"]
    return {r["id"]: r["value"]["rev"] for r in rows if not r["id"].startswith("_design/")}


def assert_holds_the_ground_truth(gt: dict[str, Any], sink: Any) -> None:
    check_archive(gt, sink, sink)  # every record once; every binary read back from CouchDB and hashed
    acct = gt["accounts"][0]
    import rcetl

    for stream, items in (("call-log", acct["call_log"]), ("message-store", acct["messages"])):
        for item in items:
            stored = sink.stored_json(rcetl.Record(stream, item["id"], {}, acct["account_id"]))
            assert stored is not None, f"{stream} {item['id']} missing"
            assert {k: v for k, v in stored.items() if k != "uri"} == {k: v for k, v in item.items() if k != "uri"}
    docs = [r["doc"] for r in sink.client.json("GET", "_all_docs", params={"include_docs": "true"})["rows"]
            if not r["id"].startswith("_design/")]
    assert not [d["_id"] for d in docs if d.get("kind") == "pending"], "binaries whose record never came"
    assert not [d["_id"] for d in docs if d.get("kind") == "binary" and not d.get("binaries")], "half uploads"


def documents(url: str, database: str) -> int:
    """Documents in the database now (design documents included; 0 before it exists)."""
    import requests

    resp = requests.get(f"{url}/{database}", timeout=10)
    return resp.json().get("doc_count", 0) if resp.status_code == 200 else 0


def couch(url: str, database: str) -> dict[str, Any]:
    return {"plugin": "couchdb", "url": url, "database": database}


def test_couchdb_holds_the_ground_truth_and_a_rerun_adds_no_revision(couchdb_url: str, tmp_path: Path,
                                                                    monkeypatch) -> None:
    monkeypatch.setenv("RCETL_HOME", str(tmp_path / "home"))
    opened = Opened()
    with default_sandbox() as sb:
        try:
            gt = sb.ground_truth()
            path = write_pipeline(tmp_path, sb, {"db": couch(couchdb_url, unique_db("e2e"))})
            first = run(path)
            assert first.status == "ok", first.errors
            db = opened.open(path, "db")
            assert_holds_the_ground_truth(gt, db)

            before = revisions(db)
            again = run(path, full_refresh=True)
            assert again.status == "ok", again.errors
            assert again.streams["call-log"].records == len(gt["accounts"][0]["call_log"])
            assert files_uploaded(again, "db") == 0
            assert again.changed_records == 0
            assert revisions(db) == before, "a re-run added revisions"
            verify_clean(path, tmp_path / "home")
        finally:
            opened.close()


def test_sigkill_mid_run_then_rerun_loses_and_duplicates_nothing(couchdb_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    opened = Opened()
    with default_sandbox() as sb:
        try:
            gt = sb.ground_truth()
            database = unique_db("crash")
            path = write_pipeline(tmp_path, sb, {"db": couch(couchdb_url, database)})
            env = {**os.environ, "RCETL_HOME": str(home), "PYTHONUNBUFFERED": "1"}
            acct = gt["accounts"][0]
            made = kill_runs(path, env, kills=int(os.environ.get("RCETL_CRASH_KILLS", "6")), seed=20,
                             progress=lambda: documents(couchdb_url, database),
                             total=len(acct["call_log"]) + len(acct["recordings"]) + len(acct["messages"]))
            assert made >= 3, f"only {made} kills landed"
            final_run(path, env)
            assert_holds_the_ground_truth(gt, opened.open(path, "db"))
        finally:
            opened.close()
