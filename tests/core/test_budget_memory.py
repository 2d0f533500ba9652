"""What only the in-process backend promises: one budget per credential for the process."""

from __future__ import annotations

import threading

from rcetl.budget import GroupLimit
from rcetl.budget.memory import FALLBACK_LIMIT, MemoryBudget, MemoryBudgetProvider


def test_provider_keeps_one_budget_per_credential():
    provider = MemoryBudgetProvider()
    defaults = {"Heavy": GroupLimit(10, 60)}
    first = provider.budget("cred-a", defaults)
    assert provider.budget("cred-a", {}) is first
    assert provider.budget("cred-b", defaults) is not first


def test_a_budget_with_no_defaults_is_conservative():
    budget = MemoryBudget()
    budget.release(budget.acquire("light"))
    state = budget.snapshot()["light"]
    assert (state.limit, state.window) == (FALLBACK_LIMIT.limit, FALLBACK_LIMIT.window)


def test_group_names_match_whatever_their_case():
    # Headers say "heavy", the OpenAPI spec says "Heavy": they are one bucket.
    budget = MemoryBudget({"Heavy": GroupLimit(2, 60)})
    budget.release(budget.acquire("heavy"))
    budget.release(budget.acquire("HEAVY"))
    assert list(budget.snapshot()) == ["Heavy"]
    assert budget.snapshot()["Heavy"].used == 2


def test_a_waiter_that_gives_up_does_not_block_the_line():
    budget = MemoryBudget({"Heavy": GroupLimit(1, 0.2)})
    budget.release(budget.acquire("Heavy"))

    class GiveUp(Exception):
        pass

    def impatient(group, seconds):
        raise GiveUp  # the observer raising stands for a KeyboardInterrupt in the wait

    budget.on_wait = impatient
    try:
        budget.acquire("Heavy")
    except GiveUp:
        pass
    budget.on_wait = None
    done = threading.Event()
    thread = threading.Thread(target=lambda: (budget.release(budget.acquire("Heavy")), done.set()))
    thread.start()
    assert done.wait(5)
    assert budget.snapshot()["Heavy"].sent == 2


def test_a_long_wait_is_visible_with_its_reason_and_shown_by_progress(caplog):
    import logging
    import time
    from types import SimpleNamespace

    from rcetl.cli import progress

    budget = MemoryBudget({"Heavy": GroupLimit(1, 60)})
    budget.release(budget.acquire("Heavy"))
    assert budget.snapshot()["Heavy"].waiting_for == 0  # nobody waits: nothing to show
    waiter = threading.Thread(target=lambda: budget.acquire("Heavy"), daemon=True)
    waiter.start()
    time.sleep(0.3)
    state = budget.snapshot()["Heavy"]
    assert (state.waiting, state.wait_reason) == (1, "window full") and state.waiting_for >= 0.25

    budget.release(budget.acquire("Light"), retry_after=30)
    light = threading.Thread(target=lambda: budget.acquire("Light"), daemon=True)
    light.start()
    time.sleep(0.2)
    assert budget.snapshot()["Light"].wait_reason == "429 penalty"

    shown = progress.RunProgress(live=False)
    # a run session's small interface for progress: each credential's budget as the run sees it
    shown.attach(SimpleNamespace(budget_snapshots=lambda: [("cred-abcdef123456", budget.snapshot())]))  # type: ignore[arg-type]
    caplog.set_level(logging.INFO, logger="rcetl.progress")
    progress.LONG_WAIT, saved = 0.1, progress.LONG_WAIT
    try:
        announced: set = set()
        shown._announce_long_waits(announced)
        shown._announce_long_waits(announced)  # one line per wait, not one per poll
    finally:
        progress.LONG_WAIT = saved
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert any("for Heavy (window full 1/1): 1 request(s) in line [budget cred-abcde" in m for m in lines)
    assert any("for Light (429 penalty" in m for m in lines)


def test_download_pools_are_sized_from_the_credentials_budget():
    from types import SimpleNamespace

    from rcetl.executors.pools import AUTO_MIN, PoolPerCredential, threads_from_budget

    def engine_with(limit: int):
        budget = MemoryBudget({"Medium": GroupLimit(limit, 60), "Heavy": GroupLimit(min(limit, 10), 60)})
        return SimpleNamespace(connections={"rc": SimpleNamespace(credential="cred")},
                               budgets=SimpleNamespace(created={"cred": budget}))

    assert threads_from_budget(engine_with(40), "rc") == 40  # a thread per slot that frees at once
    assert threads_from_budget(engine_with(5), "rc") == AUTO_MIN
    assert threads_from_budget(engine_with(10**9), "rc") is None  # unlimited: the configured size
    assert threads_from_budget(engine_with(40), "other") is None

    engine = engine_with(40)
    pool = PoolPerCredential(8, sizer=lambda conn: threads_from_budget(engine, conn))
    routed = SimpleNamespace(origin={"connection": "rc"})
    assert pool.submit(lambda item: item.origin["connection"], routed).result(5) == "rc"
    pool.shutdown()
    assert pool.pools() == {"rc": 40}


def test_a_waiter_takes_a_slot_that_frees_without_waiting_for_the_head_of_the_line():
    """When a window's slots free together, each waiter goes at its slot's moment: one behind the
    head does not wait for the head to be scheduled first (a hand-over chain fell behind the window
    on a loaded machine), and a slot is left for every waiter ahead of it."""
    budget = MemoryBudget({"Medium": GroupLimit(2, 0.3)})
    for _ in range(2):
        budget.release(budget.acquire("Medium"), limit=2, remaining=0, window=0.3)
    head_may_go = threading.Event()
    announced = threading.Event()

    def stuck_head(group, seconds):  # the head of the line is not scheduled (here: stuck in an observer)
        if not announced.is_set():
            announced.set()
            head_may_go.wait(10)

    budget.on_wait = stuck_head
    head = threading.Thread(target=lambda: budget.acquire("Medium"))
    head.start()
    assert announced.wait(5)
    behind = threading.Thread(target=lambda: budget.acquire("Medium"))
    behind.start()
    behind.join(5)
    assert not behind.is_alive()  # it went while the head was still stuck ...
    assert head.is_alive()
    head_may_go.set()
    head.join(5)
    assert not head.is_alive()  # ... and the head's slot was still there for it
    assert budget.snapshot()["Medium"].sent == 4
