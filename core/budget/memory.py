"""In-process request budgets, and the waiting line that every backend shares.

A budget is split in two so that both backends have the same semantics by construction:

* a :class:`WindowStore` keeps the sliding windows (slot time stamps, penalties, learned limits)
  and answers one question atomically: "may one request of this group go now, and if not, for
  how long must it wait?" -- in this process (:class:`MemoryWindows`) or in Redis
  (:mod:`rcetl.budget.redis`);
* a :class:`QueuedBudget` keeps the local waiting line: callers wait in order of priority (then
  arrival), only the head of the line asks the store, and it sleeps until the exact time the
  store names (never a busy spin).
"""

from __future__ import annotations

import abc
import heapq
import itertools
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from typing_extensions import Unpack

from ..stopping import RunStopped
from . import Budget, BudgetProvider, GroupLimit, GroupState, Reported, tally

#: The limit of a group no default and no header has described yet (RingCentral's Auth group).
FALLBACK_LIMIT = GroupLimit(limit=5, window=60.0)

#: How long an acquired slot counts as "in flight" before its response is reported. Only a caller
#: that dies between acquire and release relies on it: its slot stops counting after
#: lease + window instead of blocking the group for ever. It is safe whatever its length, because
#: the server counted the request when it arrived, shortly after acquire.
IN_FLIGHT_LEASE = 120.0

#: A slot in flight counts for at most this many windows beyond the acquire (a shorter cap than
#: IN_FLIGHT_LEASE for short windows): it only has to outlast the gap between acquire and the
#: request's arrival at the server, and a restarted run must not wait minutes for slots of a
#: killed process when a scaled sandbox's window is one second.
LEASE_WINDOWS = 2.0


def in_flight_lease(lease: float, window: float) -> float:
    """How long after ``acquire`` an unreleased slot is stamped: ``min(lease, 2 windows)``."""
    return min(lease, LEASE_WINDOWS * window)


#: How many waiters of one line sleep towards slots of their own at once (see ``_Line``); the rest
#: wait for their turn. More than any per-window limit a download pool is sized for.
PARALLEL_WAITERS = 64

# Sleeps end this much after the computed free time, so a thread does not wake a hair early
# (timeouts are rounded up to microseconds) and go around once more for nothing. It is paid once
# a window by the slot that frees first, whose reuse paces the whole run: 0.3 ms was 0.3 ms a window.
_WAKE_MARGIN = 0.00005


@dataclass
class Slot:
    """The handle ``acquire`` returns; ``release`` re-stamps it with the response's arrival."""

    group: str  # the group's canonical (lower-case) name
    slot_id: str
    released: bool = False
    probe: bool = False  # the group's first request, sent alone (see QueuedBudget.acquire)


def effective_limit(
    base: GroupLimit, cap: int | None, learned_limit: int | None, learned_window: float | None
) -> GroupLimit:
    """The limit a group runs at: headers are authoritative over the defaults, but a limit set in
    the pipeline file (``cap``) is a ceiling that headers may lower and never raise."""
    limit = learned_limit if learned_limit else base.limit
    if cap:
        limit = min(limit, cap)
    return GroupLimit(limit=max(1, int(limit)), window=float(learned_window or base.window))


class WindowStore(abc.ABC):
    """Where a budget's sliding windows live. Group names given to it are canonical (lower case).

    ``base`` is the pipeline's or the default limit of a group, ``cap`` the pipeline file's ceiling.
    """

    #: The longest sleep before asking again. Infinite when every change to the store is made by
    #: this process (it then wakes the waiters itself); finite when other processes share it.
    poll_cap: float = math.inf

    #: Whether ``try_take`` honours ``reserve``: then several waiters of a line sleep towards slots of
    #: their own at once (see :class:`QueuedBudget`); else only the head of the line asks.
    parallel: bool = False

    @abc.abstractmethod
    def try_take(self, group: str, base: GroupLimit, cap: int | None, reserve: int = 0) -> tuple[str | None, float]:
        """Take a slot if a request may be sent now: ``(slot_id, 0.0)``; else ``(None, seconds)``
        until the earliest time one may be sent (as far as this store can tell).

        ``reserve``: slots to leave free for waiters ahead of the caller; a slot is taken only when
        ``reserve + 1`` are free, and the wait is until then (``math.inf`` when that is not known
        yet: more waiters are ahead than the window holds, or the slot whose end the caller waits
        for is still in flight, so its end is known at its release)."""

    @abc.abstractmethod
    def give_back(
        self,
        group: str,
        slot_id: str,
        base: GroupLimit,
        cap: int | None,
        *,
        limit: int | None,
        remaining: int | None,
        window: float | None,
        retry_after: float | None,
    ) -> None:
        """Re-stamp the slot at now (the response's arrival) and learn from the headers."""

    @abc.abstractmethod
    def state(self, group: str, base: GroupLimit, cap: int | None) -> tuple[int, GroupLimit, float]:
        """``(used, effective limit, penalty seconds remaining)`` for snapshots."""

    def knows_limit(self, group: str) -> bool:
        """Whether a limit learned from headers is known for the group (then no probe is needed)."""
        return False

    def taken(self) -> None:
        """Called outside the budget's lock by the thread whose ``try_take`` just got a slot, before
        its request leaves: a store that journals slots makes this one durable here."""


class MemoryWindows(WindowStore):
    """Sliding windows in this process. Not locked: the owning budget calls it under its lock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, in_flight_lease: float = IN_FLIGHT_LEASE):
        self._clock = clock
        self._lease = in_flight_lease
        # group -> slot id -> score: the response's arrival once released, acquire + lease while in flight.
        self._slots: dict[str, dict[str, float]] = {}
        # group -> heap of (score, slot id), one entry per score a slot was given: ageing slots out
        # pops from it (an entry whose slot has another score now is stale and skipped), so each
        # request costs O(log n) instead of a scan of every slot of the window.
        self._ages: dict[str, list[tuple[float, str]]] = {}
        # Slot ids: unique across processes (a journalled store reads back another process's
        # slots), without a random draw per request.
        self._id_prefix = uuid.uuid4().hex[:22]
        self._ids = itertools.count()
        self._learned: dict[str, tuple[int | None, float | None]] = {}
        self._penalty_until: dict[str, float] = {}  # a 429's Retry-After: nothing is sent before
        self._full_until: dict[str, float] = {}  # the server said remaining == 0: nothing before

    def _limit(self, group: str, base: GroupLimit, cap: int | None) -> GroupLimit:
        return effective_limit(base, cap, *self._learned.get(group, (None, None)))

    def _restore(self, group: str, slots: dict[str, float]) -> None:
        """Replace a group's slots (read back from a journal)."""
        self._slots[group] = dict(slots)
        ages = [(score, slot_id) for slot_id, score in slots.items()]
        heapq.heapify(ages)
        self._ages[group] = ages

    def _stamp(self, group: str, slot_id: str, score: float) -> None:
        slots = self._slots.setdefault(group, {})
        slots[slot_id] = score
        ages = self._ages.setdefault(group, [])
        heapq.heappush(ages, (score, slot_id))
        if len(ages) > 2 * len(slots) + 64:  # mostly stale (released slots' in-flight stamps): compact
            self._restore(group, slots)

    def _new_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):010x}"

    def _counted(self, group: str, now: float, window: float) -> dict[str, float]:
        """The group's slots that still count at ``now`` (those that aged out are dropped)."""
        slots = self._slots.setdefault(group, {})
        ages = self._ages.setdefault(group, [])
        horizon = now - window
        while ages and ages[0][0] <= horizon:
            score, slot_id = heapq.heappop(ages)
            if slots.get(slot_id) == score:
                del slots[slot_id]
        return slots

    parallel = True

    def try_take(self, group: str, base: GroupLimit, cap: int | None, reserve: int = 0) -> tuple[str | None, float]:
        now = self._clock()
        lim = self._limit(group, base, cap)
        slots = self._counted(group, now, lim.window)
        blocked = max(self._penalty_until.get(group, 0.0), self._full_until.get(group, 0.0)) - now
        if blocked > 0:
            return None, blocked
        if len(slots) + reserve < lim.limit:
            slot_id = self._new_id()
            self._stamp(group, slot_id, now + in_flight_lease(self._lease, lim.window))
            return slot_id, 0.0
        # The caller's slot frees up when enough of the oldest slots have aged out.
        expire = len(slots) + reserve - lim.limit  # how many must age out, less one
        if expire >= len(slots):
            return None, math.inf
        scores = sorted(slots.values())
        if reserve and scores[expire] > now:
            # the slot it waits for is in flight: its end is known when its answer is in
            return None, math.inf
        return None, max(0.0, scores[expire] + lim.window - now)

    def give_back(self, group, slot_id, base, cap, *, limit, remaining, window, retry_after) -> None:
        now = self._clock()
        old_limit, old_window = self._learned.get(group, (None, None))
        self._learned[group] = (
            limit if limit and limit > 0 else old_limit,
            window if window and window > 0 else old_window,
        )
        lim = self._limit(group, base, cap)
        slots = self._counted(group, now, lim.window)
        self._stamp(group, slot_id, now)
        if retry_after is not None and retry_after > 0:
            self._penalty_until[group] = max(self._penalty_until.get(group, 0.0), now + retry_after)
        if remaining is not None and remaining <= 0:
            # The server's window is full: nothing until the oldest slot we count has aged out.
            self._full_until[group] = max(self._full_until.get(group, 0.0), min(slots.values()) + lim.window)

    def knows_limit(self, group: str) -> bool:
        return self._learned.get(group, (None, None))[0] is not None

    def state(self, group: str, base: GroupLimit, cap: int | None) -> tuple[int, GroupLimit, float]:
        now = self._clock()
        lim = self._limit(group, base, cap)
        used = len(self._counted(group, now, lim.window))
        return used, lim, max(0.0, self._penalty_until.get(group, 0.0) - now)


@dataclass
class _Line:
    """The local waiting line and counters of one group.

    Every waiter sleeps on a condition of its own (all share the budget's lock) and is woken only
    when something changes for it. One condition for the whole line woke every waiting thread for
    each slot (with 50 download threads behind a budget of 10, 50 wake-ups per request).

    With a store that can say when the n-th next slot frees (``WindowStore.parallel``), the first
    ``PARALLEL_WAITERS`` waiters each sleep until the moment of a slot of their own, leaving the
    slots of those ahead of them free: when a window's slots free together, they go together. When
    only the head slept and handed over to the next on taking its slot, each hand-over waited for
    a thread to be scheduled and to get the GIL, and on a loaded machine the line fell behind the
    window by tens of milliseconds at each boundary (measured: 20-50 ms late for 40 slots in a row
    after the first window of Medium in bench-quick)."""

    name: str  # as the first caller spelled it, for snapshots
    lock: threading.Lock
    waiting: list[tuple[int, int]] = field(default_factory=list)  # heap of (priority, arrival)
    conds: dict[tuple[int, int], threading.Condition] = field(default_factory=dict)  # ticket -> its waiter
    # ticket -> the monotonic time a sleeping waiter wakes at (inf: when woken); absent while awake
    until: dict[tuple[int, int], float] = field(default_factory=dict)
    told: tuple[int | None, float | None] = (None, None)  # the last limit and window the headers gave
    sent: int = 0
    waited: float = 0.0
    throttled: int = 0
    blocked_since: float = 0.0  # monotonic time the head started waiting for the store (0: not blocked)
    taught: bool = False  # an answer of this group came back (or its limit was known already)
    probing: float = 0.0  # monotonic time the group's first request left, until its answer is in

    def ahead(self, ticket: tuple[int, int]) -> int:
        """How many waiters are before ``ticket`` in the line."""
        return sum(1 for t in self.waiting if t < ticket)

    def leave(self, ticket: tuple[int, int]) -> None:
        if self.waiting and self.waiting[0] == ticket:
            heapq.heappop(self.waiting)
        else:
            self.waiting.remove(ticket)
            heapq.heapify(self.waiting)
        self.conds.pop(ticket, None)
        self.until.pop(ticket, None)

    def wake(self, ticket: tuple[int, int]) -> None:
        if ticket in self.until:
            del self.until[ticket]
            self.conds[ticket].notify()

    def wake_head(self) -> None:
        if self.waiting:
            self.wake(self.waiting[0])

    def wake_next(self) -> None:
        """After a slot was taken or released: the first waiter that sleeps for its turn (not
        towards a time) may now have one. Those sleeping towards a time keep it: a slot taken
        moves every later waiter's slot by exactly one, and a slot released (its end now known)
        only gives a time to the first waiter whose slot's end was unknown."""
        for ticket in sorted(self.waiting)[:PARALLEL_WAITERS]:
            if self.until.get(ticket) == math.inf:
                self.wake(ticket)
                return

    def wake_all(self) -> None:
        for ticket in list(self.until):
            self.wake(ticket)


class QueuedBudget(Budget):
    """A :class:`Budget` over any :class:`WindowStore`, with a priority-ordered waiting line."""

    #: The credential's id, set by the provider: requests are counted per credential in tallies.
    credential: str = ""
    #: Why the budget was cancelled (the run is stopping); every wait then ends with RunStopped.
    _cancelled: str | None = None

    def __init__(self, store: WindowStore, defaults: Mapping[str, GroupLimit] | None = None) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._lines: dict[str, _Line] = {}
        self._defaults = {g.lower(): lim for g, lim in (defaults or {}).items()}
        self._overrides: dict[str, GroupLimit] = {}
        self._arrivals = itertools.count()
        for group in defaults or {}:
            self._line(group)

    # -- limits ---------------------------------------------------------------------------------

    def _unknown_group_limit(self) -> GroupLimit:
        # Conservative until headers teach the real figure: the smallest known rate.
        known = list(self._defaults.values())
        if not known:
            return FALLBACK_LIMIT
        return GroupLimit(limit=min(k.limit for k in known), window=max(k.window for k in known))

    def _base(self, key: str) -> tuple[GroupLimit, int | None]:
        override = self._overrides.get(key)
        if override is not None:
            return override, override.limit
        return self._defaults.get(key) or self._unknown_group_limit(), None

    def set_limit(self, group: str, limit: GroupLimit) -> None:
        with self._lock:
            self._overrides[group.lower()] = limit
            self._line(group).wake_all()

    # -- waiting line ---------------------------------------------------------------------------

    def _line(self, group: str) -> _Line:
        key = group.lower()
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = _Line(name=group, lock=self._lock)
        return line

    def acquire(self, group: str, *, priority: int = 0) -> object:
        key = group.lower()
        with self._lock:
            line = self._line(group)
            ticket = (priority, next(self._arrivals))
            cond = line.conds[ticket] = threading.Condition(self._lock)
            heapq.heappush(line.waiting, ticket)
            announced = False
            try:
                while True:
                    if self._cancelled is not None:
                        raise RunStopped(self._cancelled)
                    ahead = line.ahead(ticket)
                    probing = not line.taught and line.probing
                    if ahead and (probing or not self._store.parallel or ahead >= PARALLEL_WAITERS):
                        self._sleep(line, ticket, cond, math.inf)  # until its turn comes
                        continue
                    if probing:
                        # The group's first request is out: its answer teaches the real limit
                        # (a plan below the default would otherwise see a burst of the default).
                        left = line.probing + self._probe_patience(key) - time.monotonic()
                        if left > 0:
                            self._sleep(line, ticket, cond, left)
                            continue
                        line.taught = True  # no answer in time: go on with what is known
                        line.wake_all()
                    slot_id, wait = self._store.try_take(key, *self._base(key), reserve=ahead)
                    if slot_id is not None:
                        line.leave(ticket)
                        if not ahead:
                            line.blocked_since = 0.0
                        line.sent += 1
                        probe = not line.taught and not self._store.knows_limit(key)
                        if probe:
                            line.probing = time.monotonic()
                        else:
                            line.taught = True
                        # The next in line may go too (or, behind a probe, waits for its answer).
                        line.wake_next()
                        slot = Slot(group=key, slot_id=slot_id, probe=probe)
                        break
                    if not ahead and not announced and self.on_wait is not None:
                        announced = True
                        self._announce(line.name, wait)
                        continue  # the lock was let go: look again
                    started = time.monotonic()
                    if not ahead:
                        line.blocked_since = line.blocked_since or started
                    self._sleep(line, ticket, cond, min(wait, self._store.poll_cap) + _WAKE_MARGIN)
                    if not ahead:  # the head's wait: the time the group was exhausted with someone waiting
                        line.waited += time.monotonic() - started
            except BaseException:
                # Leave the line, or everyone behind this ticket would wait for ever.
                if ticket in line.conds:
                    if line.waiting and line.waiting[0] == ticket:
                        line.blocked_since = 0.0
                    line.leave(ticket)
                    line.wake_all()  # those behind have one fewer ahead of them
                raise
        self._store.taken()
        tally.note(self.credential, line.name, sent=1)  # outside the lock: a tally may be in Redis
        return slot

    @staticmethod
    def _sleep(line: _Line, ticket: tuple[int, int], cond: threading.Condition, seconds: float) -> None:
        """Wait (the lock held) until woken or ``seconds`` have passed (``inf``: until woken)."""
        line.until[ticket] = time.monotonic() + seconds
        try:
            cond.wait(None if seconds >= threading.TIMEOUT_MAX else seconds)
        finally:
            line.until.pop(ticket, None)

    def cancel(self, reason: str = "the run is stopping") -> None:
        """Wake every waiter now: they, and every later acquire, raise RunStopped (Ctrl-C during a
        long window or penalty must not wait it out)."""
        with self._lock:
            self._cancelled = reason
            for line in self._lines.values():
                line.wake_all()

    def _probe_patience(self, key: str) -> float:
        """How long the rest of a group waits for its first answer: a window (a lost answer --
        a caller that died before release -- must not stop the group for ever)."""
        return self._base(key)[0].window

    def _announce(self, group: str, wait: float) -> None:
        """Tell observers about a wait, without holding the lock (they may call snapshot())."""
        callback = self.on_wait
        self._lock.release()
        try:
            if callback is not None:
                callback(group, wait)
        finally:
            self._lock.acquire()

    def release(self, slot: object, **reported: Unpack[Reported]) -> None:
        limit, window, retry_after = reported.get("limit"), reported.get("window"), reported.get("retry_after")
        if not isinstance(slot, Slot):
            raise TypeError(f"release() expects the slot acquire() returned, not {type(slot).__name__}")
        with self._lock:
            if slot.released:
                return  # a second release would push the slot later for nothing
            slot.released = True
            self._store.give_back(
                slot.group,
                slot.slot_id,
                *self._base(slot.group),
                limit=limit,
                remaining=reported.get("remaining"),
                window=window,
                retry_after=retry_after,
            )
            line = self._lines[slot.group]
            answered = slot.probe and not line.taught
            if slot.probe or limit:
                line.taught, line.probing = True, 0.0  # the answer is in: the rest may go
            if retry_after is not None and retry_after > 0:
                line.throttled += 1
            told = (limit or line.told[0], window or line.told[1])
            if answered or told != line.told:
                line.told = told
                line.wake_all()  # the rest may go, or the headers changed every waiter's slot
            else:
                # The slot's end is known now. The head of the line computed its wait from the
                # oldest slot, which may be this one's provisional end (acquire + lease: up to two
                # windows late), so it looks again; a waiter behind that slept until the end was
                # known may have a time now.
                line.wake_head()
                line.wake_next()
        if retry_after is not None and retry_after > 0:
            tally.note(self.credential, line.name, throttled=1)

    def snapshot(self) -> dict[str, GroupState]:
        with self._lock:
            result = {}
            now = time.monotonic()
            for key, line in self._lines.items():
                used, lim, penalty = self._store.state(key, *self._base(key))
                blocked = now - line.blocked_since if line.blocked_since and line.waiting else 0.0
                result[line.name] = GroupState(
                    group=line.name,
                    limit=lim.limit,
                    window=lim.window,
                    used=used,
                    penalty_remaining=penalty,
                    sent=line.sent,
                    waited=line.waited,
                    throttled=line.throttled,
                    waiting=len(line.waiting),
                    waiting_for=blocked,
                    wait_reason="" if not blocked else "429 penalty" if penalty > 0 else "window full",
                )
            return result


class MemoryBudget(QueuedBudget):
    """The budget of one credential inside one process (threads share it)."""

    def __init__(
        self,
        defaults: Mapping[str, GroupLimit] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        in_flight_lease: float = IN_FLIGHT_LEASE,
    ) -> None:
        super().__init__(MemoryWindows(clock=clock, in_flight_lease=in_flight_lease), defaults)


class PerCredentialProvider(BudgetProvider):
    """Keeps one budget per credential for the life of the provider (the process, usually)."""

    def __init__(self) -> None:
        self._budgets: dict[str, Budget] = {}
        self._budgets_lock = threading.Lock()

    def budget(self, credential: str, defaults: dict[str, GroupLimit]) -> Budget:
        with self._budgets_lock:
            found = self._budgets.get(credential)
            if found is None:
                found = self._budgets[credential] = self._create(credential, defaults)
                found.credential = credential  # type: ignore[attr-defined]
            return found

    @abc.abstractmethod
    def _create(self, credential: str, defaults: dict[str, GroupLimit]) -> Budget:
        """A new budget for ``credential``."""


class MemoryBudgetProvider(PerCredentialProvider):
    """One :class:`MemoryBudget` per credential for the life of the process."""

    def _create(self, credential: str, defaults: dict[str, GroupLimit]) -> Budget:
        return MemoryBudget(defaults)
