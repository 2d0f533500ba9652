"""A SQLite file archive is written by a process of its own (plugins/sinks/sql/sqlite_writer.py).

What must hold whatever happens to either process: a batch is one transaction, committed before
``write`` returns, with the archive's durability settings; a refused statement rolls the whole batch
back; a writer that dies loses only its uncommitted batch and the next write starts a new one; a run
that dies takes its writer with it (no process left holding the archive). ``writer_process: false``
writes the same rows from the run's own process.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import rcetl
from rcetl.plugins.sinks.sql.sqlite_writer import SqliteWriter, WriterFailed, WriterGone

from .conftest import build_sink
from .dataset import ACCOUNT, call_record


def calls(start: int, n: int) -> list[rcetl.ArchivedRecord]:
    return [rcetl.ArchivedRecord(rcetl.Record("call-log", d["id"], d, account=ACCOUNT)) for d in
            (call_record(i, recorded=False) for i in range(start, start + n))]


def rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


@pytest.fixture
def sink_at(tmp_path: Path):
    opened = []

    def make(**options):
        ctx = rcetl.RunContext.standalone(tmp_path, "t")
        sink = build_sink("sqlite", {"url": f"sqlite:///{tmp_path / 'archive.db'}", **options}, ctx)
        sink.open()
        opened.append(sink)
        return sink

    yield make
    for sink in opened:
        sink.close()


@pytest.mark.parametrize("in_process", [False, True], ids=["writer-process", "in-process"])
def test_both_ways_write_the_same_rows_and_count_changes(sink_at, tmp_path: Path, in_process: bool) -> None:
    sink = sink_at(writer_process=False if in_process else "auto")
    assert sink.write(calls(0, 600)) == 600  # more than one part (the writer gets them one by one)
    assert sink.write(calls(0, 600)) == 0  # unchanged rows are not rewritten
    assert sink.write(calls(590, 20)) == 10
    writer = sink._sqlite_writer
    if in_process:
        assert writer is None
    else:
        assert writer is not None and writer.pid not in (None, os.getpid())
        # the child's own connection commits as durably as every other connection of the sink
        assert writer.settings == {"journal_mode": "wal", "synchronous": 2}
    db = tmp_path / "archive.db"
    assert rows(db, "SELECT count(*) FROM rc_call_log") == [(610,)]
    assert rows(db, "SELECT count(*) FROM rc_call_legs") == [(1220,)]


def test_small_batches_are_written_in_the_run_s_process_until_a_big_one_starts_the_writer(
        sink_at, tmp_path: Path) -> None:
    """Records with binaries come in batches of at most 32 per download slot: a second interpreter
    (16-19 MB of peak RSS) for a few rows a minute bought nothing. A backfill's page starts it, and
    it writes every batch after that, big or small."""
    sink = sink_at()
    assert sink.write(calls(0, 256)) == 256
    assert sink._sqlite_writer is None
    assert sink.write(calls(256, 500)) == 500
    writer = sink._sqlite_writer
    assert writer is not None and writer.pid not in (None, os.getpid())
    assert sink.write(calls(756, 3)) == 3
    assert sink._sqlite_writer is writer and writer.pid is not None
    assert rows(tmp_path / "archive.db", "SELECT count(*) FROM rc_call_log") == [(759,)]


def test_writer_process_true_starts_it_with_the_first_batch(sink_at) -> None:
    sink = sink_at(writer_process=True)
    assert sink.write(calls(0, 2)) == 2
    assert sink._sqlite_writer is not None and sink._sqlite_writer.pid not in (None, os.getpid())


@pytest.mark.parametrize("writer", ["started", "not-yet"])
def test_a_call_that_lost_a_leg_loses_its_leg_row(sink_at, tmp_path: Path, writer: str) -> None:
    sink = sink_at()
    if writer == "started":
        sink.write(calls(1000, 600))  # a backfill's page started the writer process
    [call] = calls(3, 1)
    sink.write([call])
    shorter = dict(call.record.data, legs=call.record.data["legs"][:1])
    sink.write([rcetl.ArchivedRecord(rcetl.Record("call-log", call.key, shorter, account=ACCOUNT))])
    assert rows(tmp_path / "archive.db", f"SELECT leg_index FROM rc_call_legs WHERE call_id = '{call.key}'") == [(0,)]
    assert (sink._sqlite_writer is not None) == (writer == "started")


def test_a_refused_statement_rolls_the_whole_batch_back_and_names_the_database(sink_at, tmp_path: Path) -> None:
    sink = sink_at()
    sink.write(calls(0, 2))
    with sqlite3.connect(tmp_path / "archive.db") as db:  # the legs table refuses any new row
        db.execute("CREATE TRIGGER no_legs BEFORE INSERT ON rc_call_legs BEGIN SELECT RAISE(ABORT, 'no legs today'); END")
    with pytest.raises(rcetl.PermanentError) as err:
        sink.write(calls(2, 600))  # the call rows were upserted before the legs: both roll back
    assert "no legs today" in err.value.message and "archive.db" in err.value.message
    assert rows(tmp_path / "archive.db", "SELECT count(*) FROM rc_call_log") == [(2,)]
    with sqlite3.connect(tmp_path / "archive.db") as db:
        db.execute("DROP TRIGGER no_legs")
    assert sink.write(calls(2, 3)) == 3  # the writer goes on with the next batch


def test_a_bad_key_while_the_batch_is_being_made_commits_nothing(sink_at, tmp_path: Path) -> None:
    sink = sink_at()
    batch = calls(0, 600)
    bad = batch[599].record
    batch[599] = rcetl.ArchivedRecord(rcetl.Record("call-log", 599, bad.data, account=ACCOUNT))  # an int key
    with pytest.raises(rcetl.PermanentError):
        sink.write(batch)  # the first part was already with the writer when the last failed
    assert rows(tmp_path / "archive.db", "SELECT count(*) FROM rc_call_log") == [(0,)]
    assert sink.write(calls(0, 3)) == 3


def test_a_writer_killed_mid_batch_loses_only_that_batch(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    writer = SqliteWriter(str(db), ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"], 30)
    upsert = "INSERT INTO t VALUES (?) ON CONFLICT (k) DO NOTHING"
    assert writer.write([[("upsert", upsert, [("a",)], True)]]) == 1

    def parts():
        yield [("upsert", upsert, [("b",)], True)]
        os.kill(writer.pid, 9)  # the writer dies with part one written, not committed
        time.sleep(0.2)
        yield [("upsert", upsert, [("c",)], True)]

    with pytest.raises(WriterGone):
        writer.write(parts())
    assert rows(db, "SELECT k FROM t") == [("a",)]
    assert writer.write([[("upsert", upsert, [("d",)], True)]]) == 1  # a new writer process
    assert rows(db, "SELECT k FROM t ORDER BY k") == [("a",), ("d",)]
    with pytest.raises(WriterFailed) as err:
        writer.write([[("upsert", "INSERT INTO t VALUES (?)", [("a",)], True)]])
    assert isinstance(err.value.error, sqlite3.IntegrityError) and err.value.sql == "INSERT INTO t VALUES (?)"
    writer.close()
    assert writer.pid is None


def test_the_writer_ends_with_the_run_that_started_it(tmp_path: Path) -> None:
    """A run killed with SIGKILL leaves no process holding the archive: the writer reads the end of
    its pipe, rolls back what it had not committed and exits; the committed rows stay."""
    db = tmp_path / "w.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    program = textwrap.dedent(f"""
        import os, sys
        from rcetl.plugins.sinks.sql.sqlite_writer import SqliteWriter, _packed
        w = SqliteWriter({str(db)!r}, ["PRAGMA journal_mode=WAL"], 30)
        w.write([[("upsert", "INSERT INTO t VALUES (?)", [("kept",)], True)]])
        w._channel.send_bytes(_packed(("write", [("upsert", "INSERT INTO t VALUES (?)", [("lost",)], True)])))
        print(w.pid, flush=True)
        os.kill(os.getpid(), 9)
    """)
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert run.returncode == -9, run.stderr
    child = int(run.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the writer process outlived the run that started it"
    with sqlite3.connect(db, timeout=0.5) as conn:  # no lock left behind
        conn.execute("INSERT INTO t VALUES ('after')")
    assert rows(db, "SELECT k FROM t ORDER BY k") == [("after",), ("kept",)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) is not alive
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_tasks_preparing_at_once_share_one_writer_process(sink_at, monkeypatch) -> None:
    """Several tasks prepare through one sink at the same time: one writer process per file."""
    import threading

    from rcetl.plugins.sinks.sql import sqlite_writer

    sink = sink_at()
    made: list[object] = []
    real = sqlite_writer.SqliteWriter.__init__

    def slow_init(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        made.append(self)
        time.sleep(0.05)  # a second task arrives while the first makes its writer
        real(self, *args, **kwargs)

    monkeypatch.setattr(sqlite_writer.SqliteWriter, "__init__", slow_init)
    threads = [threading.Thread(target=sink.prepare, args=(calls(i * 600, 600),)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1


def test_a_batch_larger_than_the_socket_buffer_arrives_whole(tmp_path: Path) -> None:
    """A batch's message (here ~12 MB, many times a socket's buffer) reaches the writer whole, however
    many reads the kernel hands it over in."""
    db = tmp_path / "w.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
    big = [(f"k{i}", chr(0x100 + i % 500) * 3000) for i in range(2000)]
    writer = SqliteWriter(str(db), ["PRAGMA journal_mode=WAL"], 30)
    try:
        assert writer.write([[("upsert", "INSERT INTO t VALUES (?, ?)", big, True)]]) == 2000
        assert writer.write([[("upsert", "INSERT INTO t VALUES (?, ?)", [("small", "x")], True)]]) == 1
    finally:
        writer.close()
    assert rows(db, "SELECT k, v FROM t ORDER BY rowid") == [*big, ("small", "x")]
