"""SQLite's writes in a process of their own, so SQLite's work runs beside the run's Python.

SQLite works inside the process that calls it, and Python's ``sqlite3`` takes the GIL back after
every row's step: a run that archives into SQLite keeps one core busy with page decoding, row
building *and* SQLite's B-trees, while the second core idles. Here a small child process (the
standard library only: this file is its program) holds the archive's write connection and runs
each batch's statements; the sink builds the next part while the child writes the last one. A
batch is one transaction, committed (with the archive's ``synchronous=FULL``) before ``write``
returns, so the engine still moves a checkpoint only after its records are durable.

No library does this for SQLite (``multiprocessing`` pools cannot start from Celery's daemonic
workers, and keep no transaction per connection): the protocol is a handful of pickled messages
over a socket pair (``multiprocessing.Pipe``):

* ``("open", path, pragmas, timeout)`` -> ``("ok", {"journal_mode": ..., "synchronous": ...})``
* ``("write", ops)``: no answer; each op is ``("upsert", sql, rows, counted)`` or
  ``("stale", select_sql, delete_sql, parents, keep)`` (children a parent no longer has go:
  ``select_sql`` ends in ``IN``, completed with one placeholder per parent of a chunk); the
  first op of a transaction begins it (``BEGIN IMMEDIATE``); after an error, ops are skipped
* ``("commit",)`` -> ``("ok", changed)`` or ``("error", exception, sql)`` (then rolled back)
* ``("rollback",)`` -> ``("ok",)``; ``("close",)`` or the pipe's end: roll back and exit.

The child also ends when the run's process dies (the pipe ends): SQLite rolls back whatever it had
not committed, so a kill anywhere leaves the archive at its last commit. It ignores SIGINT and
SIGTERM (and runs in a session of its own, out of the terminal's Ctrl-C): the run stops gracefully
on those, writing its batch in flight through this process, which must still be there.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterable
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any

Op = tuple[Any, ...]
_IN_CHUNK = 500  # parents per query (SQLite before 3.32 allows 999 variables a statement)


# --- the child --------------------------------------------------------------------------------


def _packed(message: tuple[Any, ...]) -> bytes:
    """A message to the child, pickled without pickle's memo: a batch's rows are tuples of
    distinct values, which the memo (an entry per object) only slows down (about half the time)."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True
    pickler.dump(message)
    return out.getvalue()


def pack(ops: list[Op]) -> bytes:
    """A part of a batch (its ops) as the message :meth:`SqliteWriter.write` sends, packed ahead."""
    return _packed(("write", ops))


def _serve(channel: Connection) -> None:
    import sqlite3

    db: sqlite3.Connection | None = None
    in_transaction = False
    failed: tuple[BaseException, str] | None = None
    changed = 0

    def end(commit: bool) -> None:
        nonlocal in_transaction, failed, changed
        if db is not None and in_transaction:
            db.execute("COMMIT" if commit else "ROLLBACK")
        in_transaction, failed, changed = False, None, 0

    while True:
        try:
            message = pickle.loads(channel.recv_bytes())
        except (EOFError, OSError):
            message = ("close",)
        kind = message[0]
        if kind == "open":
            _, path, pragmas, timeout = message
            try:
                db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
                for pragma in pragmas:
                    db.execute(pragma)
                # what the connection now runs with, for the run to check (e.g. synchronous=FULL)
                settings = {name: db.execute(f"PRAGMA {name}").fetchone()[0] for name in ("journal_mode", "synchronous")}
                channel.send(("ok", settings))
            except sqlite3.Error as exc:
                channel.send(("error", exc, "connect"))
        elif kind == "write":
            if failed is not None or db is None:
                continue
            sql = "BEGIN IMMEDIATE"
            try:
                if not in_transaction:
                    db.execute(sql)
                    in_transaction = True
                for op in message[1]:
                    sql = op[1]
                    if op[0] == "upsert":
                        count = db.executemany(sql, op[2]).rowcount
                        if op[3]:
                            changed += max(count, 0)
                    else:  # stale children: those of a written parent that the new rows do not keep
                        _, select_sql, delete_sql, parents, keep = op
                        by_account: dict[Any, list[Any]] = {}
                        for account, key in parents:
                            by_account.setdefault(account, []).append(key)
                        stale = []
                        for account, keys in by_account.items():
                            for i in range(0, len(keys), _IN_CHUNK):  # one query per chunk of parents
                                chunk = keys[i:i + _IN_CHUNK]
                                query = f"{select_sql} ({', '.join('?' * len(chunk))})"
                                stale += [(account, key, child) for key, child in db.execute(query, (account, *chunk))
                                          if (account, key, child) not in keep]
                        if stale:
                            sql = delete_sql
                            db.executemany(delete_sql, stale)
            except Exception as exc:  # noqa: BLE001 - reported at the commit, which rolls back
                failed = (exc, sql)
        elif kind == "commit":
            if failed is not None:
                error, failed_sql = failed
                try:
                    end(commit=False)
                except sqlite3.Error:
                    pass
                channel.send(("error", error, failed_sql))
                continue
            try:
                done = changed
                end(commit=True)
                channel.send(("ok", done))
            except sqlite3.Error as exc:
                try:
                    end(commit=False)
                except sqlite3.Error:
                    pass
                channel.send(("error", exc, "COMMIT"))
        elif kind == "rollback":
            try:
                end(commit=False)
            except sqlite3.Error:
                pass
            channel.send(("ok",))
        else:  # close, or the run's process is gone
            try:
                end(commit=False)
            finally:
                if db is not None:
                    db.close()
            return


# --- the run's side ---------------------------------------------------------------------------


class WriterGone(Exception):
    """The writer process ended (killed, crashed): the batch was not committed; a new one starts."""


class WriterFailed(Exception):
    """SQLite refused a statement of the batch (rolled back); ``error`` is SQLite's exception."""

    def __init__(self, error: BaseException, sql: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.sql = sql


class SqliteWriter:
    """The run's handle on one writer process for one SQLite file, started at the first write
    (a run that only reads, such as ``rcetl verify``, starts none) and again after it ended.
    One batch at a time: SQLite has one writer per file anyway."""

    def __init__(self, path: str, pragmas: list[str], timeout: float) -> None:
        self.path = path
        self.pragmas = pragmas
        self.timeout = timeout
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: Connection | None = None
        self._pid = 0  # the process that started the child (a forked Celery worker starts its own)
        #: What the child's connection runs with (``journal_mode``, ``synchronous``), once started.
        self.settings: dict[str, Any] = {}

    def _started(self) -> Connection:
        if self._channel is not None and self._pid == os.getpid() and self._proc is not None \
                and self._proc.poll() is None:
            return self._channel
        self._forget()
        ours, theirs = Pipe()  # a socket pair; the child gets its end by number
        try:
            self._proc = subprocess.Popen([sys.executable, "-I", "-S", os.path.abspath(__file__), str(theirs.fileno())],
                                          pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                          start_new_session=True)  # no Ctrl-C of the terminal's group
        except OSError as exc:
            ours.close()
            raise WriterGone(f"the SQLite writer process could not start: {exc}") from exc
        finally:
            theirs.close()
        self._channel = ours
        self._pid = os.getpid()
        self._channel.send_bytes(_packed(("open", self.path, self.pragmas, self.timeout)))
        reply = self._recv()
        if reply[0] != "ok":
            self._forget()
            raise WriterFailed(reply[1], reply[2])
        self.settings = reply[1]
        return self._channel

    @property
    def pid(self) -> int | None:
        """The writer process's id while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _recv(self) -> tuple[Any, ...]:
        assert self._channel is not None
        try:
            reply: tuple[Any, ...] = self._channel.recv()
        except (EOFError, OSError) as exc:
            self._forget()
            raise WriterGone(f"the SQLite writer process ended ({exc or 'its pipe closed'})") from exc
        return reply

    def write(self, parts: Iterable[list[Op] | bytes]) -> int:
        """Run every part's ops in one transaction and commit it; how many parent rows changed.
        Each part (its ops, or them packed by :func:`pack`) is sent as soon as it is made, so the
        child writes it while the next is made."""
        with self._lock:
            channel = self._started()
            try:
                for ops in parts:
                    channel.send_bytes(ops if isinstance(ops, bytes) else pack(ops))
                channel.send_bytes(_packed(("commit",)))
            except (EOFError, OSError) as exc:
                self._forget()
                raise WriterGone(f"the SQLite writer process ended ({exc})") from exc
            except BaseException:
                # Making a part failed (a bad key, a stop): nothing of this batch may commit.
                try:
                    channel.send_bytes(_packed(("rollback",)))
                    self._recv()
                except Exception:  # noqa: BLE001 - a lost child loses its transaction too
                    self._forget()
                raise
            reply = self._recv()
        if reply[0] == "error":
            raise WriterFailed(reply[1], reply[2])
        return int(reply[1])

    def close(self) -> None:
        with self._lock:
            if self._channel is not None and self._pid == os.getpid():
                try:
                    self._channel.send_bytes(_packed(("close",)))
                except OSError:
                    pass
            self._forget(wait=True)

    def _forget(self, wait: bool = False) -> None:
        channel, proc, self._channel, self._proc = self._channel, self._proc, None, None
        if channel is not None:
            channel.close()
        if proc is not None and self._pid == os.getpid():
            try:
                proc.wait(timeout=30 if wait else 0.5)  # it rolls back and exits when its pipe ends
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    # The run stops gracefully on Ctrl-C and SIGTERM and still writes (and commits) the batch in
    # flight; the terminal's Ctrl-C reaches its whole process group and a service manager's SIGTERM
    # every process of the unit. The writer outlives both: it ends when the run closes it or dies
    # (its pipe ends), and a run that must go kills it (SIGKILL).
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _serve(Connection(int(sys.argv[1])))
