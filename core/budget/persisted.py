"""Budgets of the ``memory`` backend that outlive the process: the windows are kept in the state store.

Without this a restarted run (after a kill, a crash, or a cron run that started as the last one
ended) would start with empty windows and send again what the previous process already spent in
the current window, drawing 429s -- and RingCentral's penalty restarts with every request sent
during it. So a :class:`JournalledWindows` decides in memory, with the very same code as
:class:`~rcetl.budget.memory.MemoryWindows`, and journals every slot to a table of the state
database, one row per slot (and per penalty, "window full" block and learned limit), which the
next process reads when it first uses the group.

What must be durable before a request leaves is written before ``acquire`` returns: the new slot,
stamped ``acquire + lease`` (the row is written outside the budget's lock, so other threads keep
taking and releasing meanwhile; slots taken at the same moment share one transaction, and every
write of the journal goes through one connection behind one lock, so none ever sleeps in SQLite's
busy handler). Everything else -- a release re-stamping its slot, a penalty, a
learned limit -- is written a moment later by one background thread in one transaction per batch:
if the process dies first, the slot keeps its conservative in-flight stamp, which ends after the
server's window for the request does. (A penalty is the one loss that matters; it is written within
milliseconds, and a kill in between is as unlikely as the 429 that caused it.) Writing everything
synchronously cost 2-4 ms per request on a loaded machine, up to 75 ms behind a checkpoint commit,
and showed as lost budget at a fast sandbox clock.

One process at a time per credential: two processes that run *at the same time* need the ``redis``
backend (docs/budgets.md). Times are wall-clock seconds (``time.time``): they must mean the same
in the next process.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any

import sqlalchemy as sa

from ..state.schema import keyed_table
from . import Budget, GroupLimit
from .memory import IN_FLIGHT_LEASE, MemoryWindows, PerCredentialProvider, QueuedBudget

_RACE_ATTEMPTS = 5
# Rows that are not slots; slot ids are hex (a random prefix and a counter), so they never start with "~".
_PENALTY, _FULL, _LIMIT, _WINDOW = "~penalty", "~full", "~limit", "~window"
#: A group allowing more requests per window than this does not bind (no RingCentral plan comes near:
#: the standard ones allow 5 to 50 per 60 s; an unlimited test server says 1,000,000,000). Its slots
#: are not journalled: a restart cannot overrun a budget it cannot reach, and a synchronous write on
#: every request would then only slow the run (it made downloads 5x slower against such a server).
UNBOUNDED = 100_000
#: Slot rows older than this are deleted when the writer next touches their group (they stopped
#: counting long before: a window is at most this long on any plan we know of).
_KEEP_SECONDS = 3600.0


def slot_table(metadata: sa.MetaData, prefix: str = "rcetl_") -> sa.Table:
    return keyed_table(
        f"{prefix}budget_slots",
        metadata,
        {"credential": sa.String(200), "grp": sa.String(64), "slot": sa.String(40)},
        sa.Column("score", sa.Float, nullable=False),  # a slot's stamp, a block's end, a learned figure
    )


class WindowJournal:
    """The budget table of one state database, shared by every credential's windows in a process:
    synchronous inserts of new slots, and a background writer for everything else."""

    def __init__(self, url: str, *, prefix: str = "rcetl_") -> None:
        from ..state.database import create_state_engine

        self._url = url
        self._engine = create_state_engine(url)
        self._pid = os.getpid()
        self.table = slot_table(sa.MetaData(), prefix)
        self._ready = False
        self._ready_lock = threading.Lock()
        self._later: queue.Queue[tuple[str, str, str, float, str] | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._raw: Any = None  # SQLite: the one connection every journal write goes through
        self._raw_pid = 0
        # Held for every write to the table (SQLite: the connection's too). Writers queue on it, not
        # on SQLite's lock: SQLite's busy handler sleeps 1, 2, 5, 10 ... 100 ms between tries, and a
        # slot insert that met the background writer's transaction waited up to 0.3 s (measured,
        # with the request it was to let go waiting behind it).
        self._write_lock = threading.Lock()
        # Group commit: slots taken at the same moment (a window's slots free together) share one
        # transaction. Each waits for the lock; whoever gets it writes every slot queued so far.
        self._pending: list[tuple[int, tuple[str, str, str, float]]] = []
        self._pending_lock = threading.Lock()
        self._seq = 0
        self._written: set[int] = set()

    # -- plumbing ---------------------------------------------------------------------------------

    def _begin(self) -> Any:
        if os.getpid() != self._pid:  # a forked child must not reuse its parent's connections
            self._engine.dispose(close=False)
            self._pid = os.getpid()
        return self._engine.begin()

    def _ensure_table(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            for attempt in range(_RACE_ATTEMPTS):
                try:
                    self.table.create(self._engine, checkfirst=True)
                    break
                except sa.exc.DBAPIError:
                    # another process created it between our check and our CREATE
                    if attempt == _RACE_ATTEMPTS - 1:
                        raise
                    time.sleep(0.05 * (attempt + 1))
            self._ready = True

    def _reported(self, action: str) -> Any:
        from ..state.database import reported

        return reported(self._url, action)

    # -- reads and writes -------------------------------------------------------------------------

    def load(self, credential: str, group: str) -> dict[str, float]:
        """Every row of (credential, group): slot id -> score."""
        self._ensure_table()
        t = self.table
        with self._reported("reading the request budget"), self._begin() as conn:
            rows = conn.execute(sa.select(t.c.slot, t.c.score).where(t.c.credential == credential,
                                                                     t.c.grp == group))
            return {slot: float(score) for slot, score in rows}

    def insert_now(self, credential: str, group: str, slot: str, score: float) -> None:
        """Journal a new slot before its request leaves (in one transaction with every other slot
        queued meanwhile: a burst of 40 requests costs a few commits, not 40 in a row)."""
        self._ensure_table()
        with self._pending_lock:
            self._seq += 1
            seq = self._seq
            self._pending.append((seq, (credential, group, slot, score)))
        with self._reported("keeping the request budget"), self._write_lock:
            if seq in self._written:  # another thread's transaction carried it
                self._written.discard(seq)
                return
            with self._pending_lock:
                batch, self._pending = self._pending, []
            try:
                self._insert([row for _, row in batch])
            except BaseException:
                with self._pending_lock:  # their owners write them, or raise, themselves
                    self._pending[:0] = batch
                raise
            self._written.update(n for n, _ in batch if n != seq)

    def _insert(self, rows: list[tuple[str, str, str, float]]) -> None:
        if self._engine.dialect.name == "sqlite":
            self._in_sqlite(lambda cursor: cursor.executemany(
                f'INSERT INTO "{self.table.name}" (credential, grp, slot, score) VALUES (?, ?, ?, ?)', rows))
            return
        with self._begin() as conn:
            conn.execute(sa.insert(self.table), [dict(credential=c, grp=g, slot=sl, score=sc) for c, g, sl, sc in rows])

    def _in_sqlite(self, work: Any) -> None:
        """SQLite: ``work(cursor)`` in one transaction on the connection kept for the journal (this
        write is on every request's path; through a pooled connection and a compiled statement it
        cost 5x the CPU). The caller holds ``_write_lock``."""
        if self._raw is None or self._raw_pid != os.getpid():
            self._raw = self._engine.raw_connection()  # WAL, autocommit: see state.database
            self._raw_pid = os.getpid()
            self._raw.cursor().execute("PRAGMA busy_timeout = 0")  # we wait ourselves: _begin_immediate
        cursor = self._raw.cursor()
        try:
            _begin_immediate(cursor)
            try:
                work(cursor)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
        finally:
            cursor.close()

    def put_later(self, credential: str, group: str, slot: str, score: float, *, keep: str = "set") -> None:
        """Journal ``score`` for a row soon (``keep="max"``: never lower a stored block's end)."""
        self._start_writer()
        self._later.put((credential, group, slot, score, keep))

    def flush(self) -> None:
        """Wait until every write asked for so far is done."""
        if self._writer is not None and self._writer.is_alive():
            self._later.join()

    def close(self) -> None:
        with self._writer_lock:
            writer = self._writer
            self._writer = None
        if writer is not None and writer.is_alive():
            self._later.put(None)
            writer.join(timeout=10)
        with self._write_lock:
            if self._raw is not None and self._raw_pid == os.getpid():
                self._raw.close()
            self._raw = None
        self._engine.dispose()

    def _start_writer(self) -> None:
        if self._writer is not None and self._writer.is_alive():
            return
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_loop, name="rcetl-budget-journal", daemon=True)
                self._writer.start()

    def _write_loop(self) -> None:
        while True:
            first = self._later.get()
            batch = [first]
            while True:  # everything queued meanwhile goes in the same transaction
                try:
                    batch.append(self._later.get_nowait())
                except queue.Empty:
                    break
            try:
                writes = [w for w in batch if w is not None]
                if writes:
                    self._write(writes)
            except Exception as exc:  # noqa: BLE001 - a lost re-stamp only keeps a slot counted longer
                import logging

                logging.getLogger("rcetl.budget").warning("could not journal the request budget: %s", exc)
            finally:
                for _ in batch:
                    self._later.task_done()
            if any(w is None for w in batch):
                return

    def _write(self, writes: list[tuple[str, str, str, float, str]]) -> None:
        with self._write_lock:
            if self._engine.dialect.name == "sqlite":
                self._in_sqlite(lambda cursor: self._write_sqlite(cursor, writes))
            else:
                self._write_any(writes)

    def _write_sqlite(self, cursor: Any, writes: list[tuple[str, str, str, float, str]]) -> None:
        name = self.table.name
        for keep in ("set", "max"):
            rows = [(c, g, sl, sc) for c, g, sl, sc, k in writes if k == keep]
            if rows:
                cursor.executemany(
                    f'INSERT INTO "{name}" (credential, grp, slot, score) VALUES (?, ?, ?, ?) '
                    "ON CONFLICT (credential, grp, slot) DO UPDATE SET score = excluded.score"
                    + (" WHERE score < excluded.score" if keep == "max" else ""), rows)
        old = time.time() - _KEEP_SECONDS
        cursor.executemany(f'DELETE FROM "{name}" WHERE credential = ? AND grp = ? AND slot NOT LIKE \'~%\' '
                           "AND score < ?", [(c, g, old) for c, g in {(w[0], w[1]) for w in writes}])

    def _write_any(self, writes: list[tuple[str, str, str, float, str]]) -> None:
        t = self.table
        old = time.time() - _KEEP_SECONDS
        with self._begin() as conn:
            for credential, group, slot, score, keep in writes:
                key = sa.and_(t.c.credential == credential, t.c.grp == group, t.c.slot == slot)
                update = sa.update(t).where(key).values(score=score)
                if keep == "max":
                    update = update.where(t.c.score < score)
                if conn.execute(update).rowcount == 0 and conn.execute(
                        sa.select(sa.func.count()).select_from(t).where(key)).scalar() == 0:
                    conn.execute(sa.insert(t).values(credential=credential, grp=group, slot=slot, score=score))
            for credential, group in {(w[0], w[1]) for w in writes}:
                conn.execute(sa.delete(t).where(t.c.credential == credential, t.c.grp == group,
                                                ~t.c.slot.startswith("~"), t.c.score < old))


def _begin_immediate(cursor: Any) -> None:
    """``BEGIN IMMEDIATE``, waiting for another writer of the database (the engine's checkpoint or
    blob-ledger transaction) in steps of 0.2-2 ms: SQLite's own busy handler sleeps 1, 2, 5, 10 ... 100
    ms, and this write holds up a request that may go now."""
    import sqlite3

    from ..state.database import SQLITE_BUSY_TIMEOUT_MS

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = 0.0002
    while True:
        try:
            cursor.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.002)


class JournalledWindows(MemoryWindows):
    """:class:`MemoryWindows` whose slots, blocks and learned limits are journalled to the state
    store and read back by the next process (see the module's docstring)."""

    def __init__(self, journal: WindowJournal, credential: str, *, in_flight_lease: float = IN_FLIGHT_LEASE) -> None:
        super().__init__(clock=time.time, in_flight_lease=in_flight_lease)
        self._journal = journal
        self._credential = credential
        self._loaded: set[str] = set()
        self._fresh: dict[str, tuple[str, str, float]] = {}  # thread id -> the slot it took, to journal
        self._journalled: dict[tuple[str, str], float] = {}  # (group, ~limit/~window) -> last value written

    def _load(self, group: str) -> None:
        """The group's state as the last process left it (once, on first use)."""
        if group in self._loaded:
            return
        self._loaded.add(group)
        rows = self._journal.load(self._credential, group)
        self._restore(group, {s: v for s, v in rows.items() if not s.startswith("~")})
        self._learned[group] = (int(rows[_LIMIT]) if _LIMIT in rows else None, rows.get(_WINDOW))
        self._penalty_until[group] = rows.get(_PENALTY, 0.0)
        self._full_until[group] = rows.get(_FULL, 0.0)

    def _binds(self, group: str, base: GroupLimit, cap: int | None) -> bool:
        return self._limit(group, base, cap).limit <= UNBOUNDED

    def try_take(self, group: str, base: GroupLimit, cap: int | None, reserve: int = 0) -> tuple[str | None, float]:
        self._load(group)
        slot_id, wait = super().try_take(group, base, cap, reserve)
        if slot_id is not None and self._binds(group, base, cap):
            self._fresh[str(threading.get_ident())] = (group, slot_id, self._slots[group][slot_id])
        return slot_id, wait

    def taken(self) -> None:
        """Called by the budget outside its lock once a slot is ours: journal it before it is used."""
        fresh = self._fresh.pop(str(threading.get_ident()), None)
        if fresh is not None:
            group, slot_id, score = fresh
            self._journal.insert_now(self._credential, group, slot_id, score)

    def give_back(self, group, slot_id, base, cap, *, limit, remaining, window, retry_after) -> None:
        self._load(group)
        super().give_back(group, slot_id, base, cap, limit=limit, remaining=remaining, window=window,
                          retry_after=retry_after)
        later = self._journal.put_later
        cred = self._credential
        stamp = self._slots.get(group, {}).get(slot_id)
        if stamp is not None and self._binds(group, base, cap):
            later(cred, group, slot_id, stamp)
        learned_limit, learned_window = self._learned.get(group, (None, None))
        # A learned figure is journalled when it changes, not with every response that repeats it.
        if limit and limit > 0 and learned_limit and self._journalled.get((group, _LIMIT)) != learned_limit:
            self._journalled[(group, _LIMIT)] = learned_limit
            later(cred, group, _LIMIT, float(learned_limit))
        if window and window > 0 and learned_window and self._journalled.get((group, _WINDOW)) != learned_window:
            self._journalled[(group, _WINDOW)] = learned_window
            later(cred, group, _WINDOW, float(learned_window))
        if retry_after is not None and retry_after > 0:
            later(cred, group, _PENALTY, self._penalty_until[group], keep="max")
        if remaining is not None and remaining <= 0:
            later(cred, group, _FULL, self._full_until[group], keep="max")

    def state(self, group: str, base: GroupLimit, cap: int | None) -> tuple[int, GroupLimit, float]:
        self._load(group)
        return super().state(group, base, cap)

    def knows_limit(self, group: str) -> bool:
        self._load(group)
        return super().knows_limit(group)


class JournalledBudgetProvider(PerCredentialProvider):
    """The ``memory`` backend of a pipeline with a state store: one budget per credential whose
    windows survive the process (see the module's docstring)."""

    def __init__(self, state_url: str, *, prefix: str = "rcetl_", in_flight_lease: float = IN_FLIGHT_LEASE) -> None:
        super().__init__()
        self._journal = WindowJournal(state_url, prefix=prefix)
        self._lease = in_flight_lease

    def _create(self, credential: str, defaults: dict[str, GroupLimit]) -> Budget:
        return QueuedBudget(JournalledWindows(self._journal, credential, in_flight_lease=self._lease), defaults)

    def flush(self) -> None:
        """Wait for the journal's background writes (tests; ``close`` does it too)."""
        self._journal.flush()

    def close(self) -> None:
        self._journal.close()
