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
