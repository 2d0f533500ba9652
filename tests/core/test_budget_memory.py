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
