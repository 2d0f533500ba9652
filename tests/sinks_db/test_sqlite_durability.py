"""The SQLite archive's commits are on disk before the engine moves a checkpoint (invariant 2).

In WAL mode `synchronous=NORMAL` fsyncs only at a WAL checkpoint: a power cut could then lose rows
whose checkpoint the state store (another file) already kept. A power cut cannot be simulated here;
what is checked is the setting every connection of the sink runs with (FULL = 2), the one line a
speed-minded change would break.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

import rcetl

from .conftest import build_sink


def test_every_sqlite_connection_of_the_sink_commits_with_synchronous_full(tmp_path: Path) -> None:
    ctx = rcetl.RunContext.standalone(tmp_path, "t")
    sink = build_sink("sqlite", {"url": f"sqlite:///{tmp_path / 'archive.db'}"}, ctx)
    sink.open()
    try:
        with sink.engine.connect() as a, sink.engine.connect() as b:  # two pooled connections
            for conn in (a, b):
                assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
                assert conn.execute(sa.text("PRAGMA synchronous")).scalar() == 2  # FULL
    finally:
        sink.close()


def test_a_new_sqlite_archive_has_16_kb_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    """A call's row is ~2 KB: 16 KB pages cut the WAL's frames and the index builds' system calls
    (sink.py, _SQLITE_PRAGMAS). SQLite fixes a file's page size when it is created."""
    import sqlite3

    ctx = rcetl.RunContext.standalone(tmp_path, "t")
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as db:  # an archive some earlier rcetl made with 4 KB pages
        db.execute("PRAGMA page_size=4096")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE before_rcetl (x)")
    for name, expected in (("archive.db", 16384), ("old.db", 4096)):
        sink = build_sink("sqlite", {"url": f"sqlite:///{tmp_path / name}"}, ctx)
        sink.open()
        try:
            with sink.engine.connect() as conn:
                assert conn.execute(sa.text("PRAGMA page_size")).scalar() == expected, name
        finally:
            sink.close()
