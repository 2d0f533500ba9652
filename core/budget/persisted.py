"""Budgets of the ``memory`` backend that outlive the process: the windows live in the state store.

Without this a restarted run (after a kill, a crash, or a cron run that overlapped the last one)
would start with empty windows and send again what the previous process already spent in the
current window, drawing 429s -- and RingCentral's penalty restarts with every request sent
during it. So every decision of a :class:`JournalledWindows` is one transaction on one row per
(credential, group) of the state database: read the window, decide with the very same code as
:class:`~rcetl.budget.memory.MemoryWindows`, write it back. A process that starts later reads
exactly what was sent (and a penalty learned from a 429) and resumes pacing where the last one
stopped; two processes that overlap share the window the way the Redis backend's do.

Times are wall-clock seconds (``time.time``): they must mean the same thing in the next process.
A slot still in flight when its process died counts until ``acquire + lease + window`` (see
:func:`rcetl.budget.memory.in_flight_lease`), which is after the server's window for it ends.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa

from . import Budget, GroupLimit
from .memory import IN_FLIGHT_LEASE, MemoryWindows, PerCredentialProvider, QueuedBudget

T = TypeVar("T")

#: How long the head of a waiting line sleeps at most before it reads the window again: another
#: process on the same state store may have released slots (or learned a bigger limit).
POLL_CAP = 0.25
_RACE_ATTEMPTS = 5


def window_table(metadata: sa.MetaData, prefix: str = "rcetl_") -> sa.Table:
    """One row per (credential, group): the window, penalty and learned limit as JSON."""
    return sa.Table(
        f"{prefix}budget_windows",
        metadata,
        sa.Column("credential", sa.String(200), primary_key=True),
        sa.Column("grp", sa.String(64), primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )


class WindowJournal:
    """The budget table of one state database, shared by every credential's windows in a process."""

    def __init__(self, url: str, *, prefix: str = "rcetl_") -> None:
        from ..state.database import create_state_engine

        self._url = url
        self._engine = create_state_engine(url)
        self._pid = os.getpid()
        self.table = window_table(sa.MetaData(), prefix)
        self._ready = False
        self._ready_lock = threading.Lock()

    def close(self) -> None:
        self._engine.dispose()

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

    def transaction(self, credential: str, group: str, work: Callable[[dict[str, Any]], tuple[T, bool]]) -> T:
        """Run ``work(state)`` on the row of (credential, group) inside one transaction that holds
        the row (SQLite: the database) against other writers; ``work`` returns (result, changed)
        and changed state is written back before the transaction ends."""
        from ..state.database import reported

        self._ensure_table()
        if os.getpid() != self._pid:  # a forked child must not reuse its parent's connections
            self._engine.dispose(close=False)
            self._pid = os.getpid()
        t = self.table
        where = sa.and_(t.c.credential == credential, t.c.grp == group)
        with reported(self._url, "keeping the request budget"):
            for attempt in range(_RACE_ATTEMPTS):
                try:
                    with self._engine.begin() as conn:
                        row = conn.execute(sa.select(t.c.state).where(where).with_for_update()).first()
                        state = json.loads(row[0]) if row else {}
                        result, changed = work(state)
                        if changed:
                            values = {"state": json.dumps(state), "updated": time.time()}
                            if row:
                                conn.execute(sa.update(t).where(where).values(**values))
                            else:
                                conn.execute(sa.insert(t).values(credential=credential, grp=group, **values))
                        return result
                except sa.exc.IntegrityError:
                    if attempt == _RACE_ATTEMPTS - 1:  # another process inserted the row first
                        raise
        raise AssertionError("unreachable")


class JournalledWindows(MemoryWindows):
    """:class:`MemoryWindows` whose every decision is read from and written to the state store."""

    poll_cap = POLL_CAP

    def __init__(self, journal: WindowJournal, credential: str, *, in_flight_lease: float = IN_FLIGHT_LEASE) -> None:
        super().__init__(clock=time.time, in_flight_lease=in_flight_lease)
        self._journal = journal
        self._credential = credential

    def _load(self, group: str, state: dict[str, Any]) -> None:
        self._slots[group] = {str(k): float(v) for k, v in state.get("slots", {}).items()}
        learned = state.get("learned") or [None, None]
        self._learned[group] = (learned[0], learned[1])
        self._penalty_until[group] = float(state.get("penalty_until", 0.0))
        self._full_until[group] = float(state.get("full_until", 0.0))

    def _dump(self, group: str, state: dict[str, Any]) -> None:
        state.clear()
        state["slots"] = self._slots.get(group, {})
        state["learned"] = list(self._learned.get(group, (None, None)))
        now = self._clock()
        # Only blocks still ahead are kept: the row stays small.
        for name, until in (("penalty_until", self._penalty_until), ("full_until", self._full_until)):
            if until.get(group, 0.0) > now:
                state[name] = until[group]

    def _journalled(self, group: str, decide: Callable[[], T], *, writes: bool = True) -> T:
        def work(state: dict[str, Any]) -> tuple[T, bool]:
            self._load(group, state)
            result = decide()
            if writes:
                self._dump(group, state)
            return result, writes

        return self._journal.transaction(self._credential, group, work)

    def try_take(self, group: str, base: GroupLimit, cap: int | None) -> tuple[str | None, float]:
        return self._journalled(group, lambda: MemoryWindows.try_take(self, group, base, cap))

    def give_back(self, group, slot_id, base, cap, *, limit, remaining, window, retry_after) -> None:
        self._journalled(group, lambda: MemoryWindows.give_back(
            self, group, slot_id, base, cap, limit=limit, remaining=remaining, window=window,
            retry_after=retry_after))

    def state(self, group: str, base: GroupLimit, cap: int | None) -> tuple[int, GroupLimit, float]:
        return self._journalled(group, lambda: MemoryWindows.state(self, group, base, cap), writes=False)


class JournalledBudgetProvider(PerCredentialProvider):
    """The ``memory`` backend of a pipeline with a state store: one budget per credential whose
    windows survive the process (see the module's docstring)."""

    def __init__(self, state_url: str, *, prefix: str = "rcetl_", in_flight_lease: float = IN_FLIGHT_LEASE) -> None:
        super().__init__()
        self._journal = WindowJournal(state_url, prefix=prefix)
        self._lease = in_flight_lease

    def _create(self, credential: str, defaults: dict[str, GroupLimit]) -> Budget:
        return QueuedBudget(JournalledWindows(self._journal, credential, in_flight_lease=self._lease), defaults)

    def close(self) -> None:
        self._journal.close()
