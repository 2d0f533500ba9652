"""Review of 15be6d2 (waiters sleep towards slots of their own): a release must wake the head of
the line when the slot it computed its wait from was still in flight.

The head (no one ahead) computes its wait from the oldest slot's score; while every slot of the
window is in flight, that score is the provisional ``acquire + lease`` stamp (up to two windows
later than the real end). The release re-stamps the slot at the response's arrival, so the head's
slot frees a window after that. Before 15be6d2 a release always woke the head; since, a release
wakes only a waiter sleeping "until woken" (``until == inf``), so the head keeps sleeping towards
the provisional time: its slot stays free and unused for up to two extra windows (Heavy: 2 min),
and the waiters behind it, each leaving a slot for it, go first (priority order broken). Fixed in
0b505ca (a release wakes the head again).
"""

from __future__ import annotations

import threading

from rcetl.budget import GroupLimit
from rcetl.budget.memory import MemoryBudget


def _store_clock_jumps_after_release(budget: MemoryBudget, now: list[float], to: float) -> None:
    """The store's clock moves to ``to`` right after a release re-stamps its slot, inside the
    budget's lock: whoever looks next sees the slot aged out."""
    store = budget._store
    original = store.give_back

    def give_back(*args, **kwargs):
        original(*args, **kwargs)
        now[0] = to

    store.give_back = give_back  # type: ignore[method-assign]


def test_a_release_wakes_the_head_that_waits_for_an_in_flight_slot():
    now = [900.0]
    budget = MemoryBudget({"Heavy": GroupLimit(2, 60)}, clock=lambda: now[0])
    # The group's first answer (its headers teach the limit): no probe is pending afterwards.
    budget.release(budget.acquire("Heavy"), limit=2, remaining=1, window=60)
    now[0] = 1000.0  # that slot has aged out
    # Both slots of the window in flight: stamped acquire + lease (2 windows) until their answers.
    in_flight = budget.acquire("Heavy")
    other = budget.acquire("Heavy")
    got = threading.Event()

    def head():
        budget.release(budget.acquire("Heavy"))
        got.set()

    thread = threading.Thread(target=head, daemon=True)
    thread.start()
    line = budget._lines["heavy"]
    for _ in range(500):  # the head is asleep (towards its computed time)
        with budget._lock:
            if line.until:
                break
        got.wait(0.01)
    assert not got.is_set()
    # The answer arrives; a window later (the store's clock) its slot has aged out.
    _store_clock_jumps_after_release(budget, now, 1000.0 + 61)
    budget.release(in_flight)
    # A woken head takes the freed slot at once; a head left asleep waits ~3 windows (180 s).
    assert got.wait(10), "the head of the line slept on after the slot it waited for was released"
    budget.release(other)
    budget.cancel()


def test_cancel_ends_every_wait_at_once_the_head_and_those_behind_it():
    """Ctrl-C during a long window: the head (sleeping towards a time) and the waiters behind it
    (sleeping until woken, or towards slots of their own) all end with RunStopped."""
    from rcetl.stopping import RunStopped

    budget = MemoryBudget({"Heavy": GroupLimit(1, 3600)})
    budget.release(budget.acquire("Heavy"), limit=1, remaining=0, window=3600)  # the window is spent
    stopped: list[BaseException] = []
    lock = threading.Lock()

    def wait():
        try:
            budget.acquire("Heavy")
        except RunStopped as exc:
            with lock:
                stopped.append(exc)

    threads = [threading.Thread(target=wait, daemon=True) for _ in range(5)]
    for thread in threads:
        thread.start()
    line = budget._lines["heavy"]
    for _ in range(500):  # every waiter is asleep
        with budget._lock:
            if len(line.until) == len(threads):
                break
        threading.Event().wait(0.01)
    budget.cancel()
    for thread in threads:
        thread.join(10)
    assert len(stopped) == len(threads), "a waiter slept on through cancel()"
