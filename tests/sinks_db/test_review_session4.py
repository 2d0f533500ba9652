"""Review of the #17 record-path work (session 4): the column functions of rows.py, the SQLite
writer process, and hostile payloads.

- A typed column is a convenience index over ``raw``: a value that does not fit is dropped there,
  never a reason to refuse (or crash on) the batch (rows.py's docstring). Digit strings that
  ``str.isdigit`` accepts but ``int`` refuses ("²", "--5") and list fields sent as numbers made
  ``to_rows`` raise a bare ValueError/TypeError, which fails the whole batch on every retry.
- The SQLite writer process lives in the run's process group: the terminal's Ctrl-C (SIGINT to the
  whole foreground group) and a service manager's SIGTERM to every process of the unit killed it,
  while the run itself stops gracefully and still writes the batch in flight: that batch failed
  (WriterGone) and the writer printed a KeyboardInterrupt traceback.
- Values that kill mutants of the column fast paths the original lists let survive.
"""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import rcetl
from rcetl.plugins.sinks.sql.rows import integer, integers, phone, phones, timestamp, timestamps, to_rows
from rcetl.plugins.sinks.sql.sqlite_writer import SqliteWriter


def _typed(values: list) -> list:
    return [(type(v), v) for v in values]


# --- hostile numbers and containers -----------------------------------------------------------

ODD_DIGITS = ["²", "--5", "-", "1²", "³³", "-²", "٥", " 7 ", "-4", "+4", "1_000", "١٢"]


def test_integer_drops_digit_strings_int_refuses_instead_of_raising() -> None:
    for value in ODD_DIGITS:
        try:
            expected = int(value)
        except ValueError:
            expected = None
        assert integer(value) == expected if value not in ("+4", "1_000") else integer(value) is None, value
    for a, b in itertools.product(ODD_DIGITS + [None, 3, "12"], repeat=2):
        values = [a, 1, b]
        assert _typed(integers(list(values))) == _typed([integer(v) for v in values]), values


def _call(extra: dict) -> rcetl.ArchivedRecord:
    data = {"id": "c1", "startTime": "2024-03-01T09:00:00.000Z", **extra}
    return rcetl.ArchivedRecord(rcetl.Record("call-log", "c1", data, account="acct"))


def _message(extra: dict) -> rcetl.ArchivedRecord:
    return rcetl.ArchivedRecord(rcetl.Record("message-store", 7, {"id": 7, **extra}, account="acct"))


@pytest.mark.parametrize("record", [
    _call({"duration": "--5"}),
    _call({"duration": "²", "from": {"extensionId": "--1"}}),
    _call({"legs": [{"legType": "Accept", "duration": "²"}]}),
    _call({"legs": 5}),
    _call({"legs": 2.5}),
    _message({"attachments": 5}),
    _message({"attachments": [{"id": "--1"}, {"id": 3, "size": "²"}]}),
    _message({"conversationId": "²", "faxPageCount": "--2"}),
], ids=lambda r: repr({k: v for k, v in r.record.data.items() if k not in ("id", "startTime")}))
def test_hostile_values_are_dropped_from_typed_columns_not_fatal(record: rcetl.ArchivedRecord) -> None:
    out = to_rows([record])
    parent = "call_log" if record.record.stream == "call-log" else "messages"
    assert out.tables[parent].count == 1
    assert out.tables[parent].columns["raw"] == [record.record.data]  # the exact value stays in raw
    for rows in out.tables.values():
        for name in ("duration", "extension_id", "from_extension_id", "conversation_id", "fax_page_count", "size"):
            assert all(v is None or type(v) is int for v in rows.columns.get(name, [])), name


def test_a_hostile_batch_is_stored_by_the_sink(tmp_path: Path, run_ctx: rcetl.RunContext) -> None:
    from .conftest import build_sink

    sink = build_sink("sqlite", {"url": f"sqlite:///{tmp_path / 'a.db'}"}, run_ctx)
    sink.open()
    try:
        assert sink.write([_call({"duration": "--5", "legs": 5}), _message({"attachments": 5})]) == 2
    finally:
        sink.close()
    with sqlite3.connect(tmp_path / "a.db") as db:
        assert db.execute("SELECT duration FROM rc_call_log").fetchall() == [(None,)]


# --- fast paths: values that kill surviving mutants ------------------------------------------

MORE_TIMES = [
    "2016-06-06T18:26:52.0001",  # 24 characters, no Z: not the API's form (kills dropping v[23] == "Z")
    "20160606T182652.12+0200Z",  # 24 characters, an offset before the Z (kills dropping the tzinfo check)
    "2016-06-06T18:26:52.1+02Z",
    "2016-06-06T18:26:52.000Z",
]
MORE_PHONES = [
    "+99912345678",  # 12 characters, "+" and digits, not "+1" (kills dropping v[1] == "1")
    "116505550102",  # no "+" (kills dropping v[0] == "+")
    "x16505550102",
    "+16505550102",
]


def test_timestamps_and_phones_on_near_misses_of_the_inline_form() -> None:
    for a, b in itertools.product(MORE_TIMES, repeat=2):
        assert _typed(timestamps([a, b])) == _typed([timestamp(a), timestamp(b)]), (a, b)
    for a, b in itertools.product(MORE_PHONES, repeat=2):
        assert _typed(phones([a, b])) == _typed([phone(a), phone(b)]), (a, b)


# --- the writer process and the run's signals -------------------------------------------------

UPSERT = "INSERT INTO t VALUES (?) ON CONFLICT (k) DO NOTHING"


def _writer(tmp_path: Path) -> tuple[SqliteWriter, Path]:
    db = tmp_path / "w.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    return SqliteWriter(str(db), ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"], 30), db


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_runs_stop_signals_do_not_kill_the_writer_mid_batch(tmp_path: Path, signum: int) -> None:
    """rcetl stops gracefully on Ctrl-C and SIGTERM, writing the batch in flight; the terminal sends
    SIGINT to the whole process group and systemd SIGTERM to every process of the unit. The writer
    must outlive both signals (it ends when the run closes it or its pipe ends)."""
    writer, db = _writer(tmp_path)
    try:
        assert writer.write([[("upsert", UPSERT, [("a",)], True)]]) == 1
        pid = writer.pid

        def parts():
            yield [("upsert", UPSERT, [("b",)], True)]
            os.kill(pid, signum)
            time.sleep(0.3)
            yield [("upsert", UPSERT, [("c",)], True)]

        assert writer.write(parts()) == 2
        assert writer.pid == pid
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT k FROM t ORDER BY k").fetchall() == [("a",), ("b",), ("c",)]
    finally:
        writer.close()
    assert writer.pid is None


def test_ctrl_c_prints_nothing_from_the_writer(tmp_path: Path) -> None:
    """The terminal's Ctrl-C reaches every process of the foreground group: the writer prints no
    traceback of its own (the run prints its one "interrupted" line)."""
    db = tmp_path / "w.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    program = textwrap.dedent(f"""
        import os, signal, time
        from rcetl.plugins.sinks.sql.sqlite_writer import SqliteWriter
        signal.signal(signal.SIGINT, lambda *_: None)  # this process plays the run that stops gracefully
        w = SqliteWriter({str(db)!r}, ["PRAGMA journal_mode=WAL"], 30)
        w.write([[("upsert", {UPSERT!r}, [("a",)], True)]])
        os.killpg(os.getpgid(0), signal.SIGINT)  # what the terminal does on Ctrl-C
        time.sleep(0.3)
        print(w.write([[("upsert", {UPSERT!r}, [("b",)], True)]]), flush=True)
        w.close()
    """)
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60,
                         start_new_session=True)  # its own group, so the test runner gets no SIGINT
    assert run.returncode == 0 and run.stdout.strip() == "1", run.stderr
    assert "Traceback" not in run.stderr, run.stderr
