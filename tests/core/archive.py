"""Helpers for the engine tests: run a pipeline in-process, and read back what the archive holds
(the SQLite sink's rows and the filesystem sink's folder) next to what the fake source should give."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rcetl.config import load_pipeline
from rcetl.engine import run_pipeline
from rcetl.registry import PluginManager
from rcetl.run import RunSummary
from rcetl.state import StateStore

from . import fakesource

BIG = 2**53 + 1  # the fake source's first id: beyond what a float holds exactly


def pipeline_text(count: int = 6, page: int = 2, *, name: str = "engine", extra: str = "",
                  sinks: str | None = None) -> str:
    sinks = sinks or """\
  db: {plugin: sqlite, url: "sqlite:///archive.db"}
  files: {plugin: filesystem, path: files}
"""
    return f"""\
pipeline: {name}
fake: {{}}
executor: {{workers: 2, downloads: 3}}
{extra}sources:
  items: {{count: {count}, page: {page}, blob_size: 3000}}
sinks:
{sinks}"""


def run(path: Path, pm: PluginManager, **kwargs: Any) -> RunSummary:
    return run_pipeline(load_pipeline(path, pm=pm), pm, **kwargs)


def expected(count: int, size: int = 3000) -> dict[int, str]:
    """id -> sha256 of its binary, for every item the fake source has."""
    return {BIG + i: hashlib.sha256(fakesource.blob_bytes(BIG + i, size)).hexdigest() for i in range(count)}


@dataclass
class Row:
    key: str
    key_type: str
    raw: dict[str, Any]
    archive: list[dict[str, Any]]


def db_rows(db: Path) -> list[Row]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select record_key, key_type, raw, archive from rc_records where stream = 'items'")
        return [Row(k, t, json.loads(r), json.loads(a)) for k, t, r, a in rows]


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_archive_exact(folder: Path, count: int) -> None:
    """Every record once in the database, every binary once in the folder, byte-exact, nothing else."""
    want = expected(count)
    rows = db_rows(folder / "archive.db")
    assert sorted(r.key for r in rows) == sorted(str(k) for k in want), "records missing or duplicated"
    for row in rows:
        item_id = int(row.key)
        assert row.key_type == "int"
        assert row.raw["id"] == item_id and isinstance(row.raw["id"], int)  # exact, never a float
        [blob] = row.archive
        assert blob["status"] == "stored"
        assert blob["sha256"] == want[item_id]
        stored = Path(blob["locations"]["files"])
        assert stored.name == f"{item_id}.bin"
        assert sha_of(stored) == want[item_id], f"{stored} does not hold the bytes of {item_id}"
    files = sorted(p for p in (folder / "files").rglob("*") if p.is_file())
    names = sorted(p.name for p in files)
    assert names == sorted([f"{k}.bin" for k in want] + [f"{k}.bin.json" for k in want]), \
        "the archive folder holds partial, stray or missing files"


def checkpoint(folder: Path, pipeline: str = "engine") -> Any:
    store = StateStore(f"sqlite:///{folder / '.rcetl' / pipeline / 'state.db'}")
    try:
        return store.get_checkpoint(pipeline, "items@fake", "items", "")
    finally:
        store.close()


def state(folder: Path, pipeline: str = "engine") -> StateStore:
    return StateStore(f"sqlite:///{folder / '.rcetl' / pipeline / 'state.db'}")
