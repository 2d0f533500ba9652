"""What the state-store backend adds to the contract: the windows outlive the process.

A "restarted process" is a second provider on the same state database (what the next `rcetl run`
opens); a "killed process" is one that acquired a slot and never released it. The end-to-end
version with real SIGKILLs and the sandbox's counters is tests/reliability/test_budget_restart.py.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from rcetl.budget import GroupLimit
from rcetl.budget.persisted import JournalledBudgetProvider

CRED = "cred-1"


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def _provider(url: str, **kwargs) -> JournalledBudgetProvider:
    return JournalledBudgetProvider(url, **kwargs)


def test_a_restarted_process_waits_for_what_the_last_one_sent(state_url):
    defaults = {"Heavy": GroupLimit(3, 0.6)}
    before = _provider(state_url).budget(CRED, defaults)
    first = time.time()
    for _ in range(3):
        before.release(before.acquire("Heavy"))
    after = _provider(state_url).budget(CRED, defaults)
    assert after.snapshot()["Heavy"].used == 3
    after.release(after.acquire("Heavy"))
    assert time.time() - first >= 0.6


def test_a_penalty_from_a_429_survives_a_restart(state_url):
    defaults = {"Heavy": GroupLimit(10, 0.3)}
    before = _provider(state_url).budget(CRED, defaults)
    punished = time.time()  # before: the penalty starts at the release, no earlier
    before.release(before.acquire("Heavy"), retry_after=0.8)
    after = _provider(state_url).budget(CRED, defaults)
    assert after.snapshot()["Heavy"].penalty_remaining > 0.5
    after.release(after.acquire("Heavy"))
    assert time.time() - punished >= 0.8


def test_learned_limits_survive_a_restart(state_url):
    defaults = {"Heavy": GroupLimit(10, 60)}
    before = _provider(state_url).budget(CRED, defaults)
    before.release(before.acquire("Heavy"), limit=4, remaining=3, window=60)
    assert _provider(state_url).budget(CRED, defaults).snapshot()["Heavy"].limit == 4


def test_a_killed_process_slot_counts_until_its_lease_and_window_end(state_url):
    defaults = {"Heavy": GroupLimit(1, 0.3)}
    killed = _provider(state_url, in_flight_lease=0.2).budget(CRED, defaults)
    taken = time.time()
    killed.acquire("Heavy")  # the process dies here: no release
    restarted = _provider(state_url, in_flight_lease=0.2).budget(CRED, defaults)
    restarted.release(restarted.acquire("Heavy"))
    assert time.time() - taken >= 0.2 + 0.3


def test_an_in_flight_slot_is_leased_for_at_most_two_windows(state_url):
    # With the default 120 s lease a restart against a 1 s window (a scaled sandbox) would wait
    # two minutes for every slot a killed run left in flight.
    defaults = {"Heavy": GroupLimit(1, 0.2)}
    taken = time.time()
    _provider(state_url).budget(CRED, defaults).acquire("Heavy")
    restarted = _provider(state_url).budget(CRED, defaults)
    restarted.release(restarted.acquire("Heavy"))
    assert 0.6 <= time.time() - taken < 5


def test_overlapping_processes_share_one_window(state_url):
    limit, window = 4, 0.3
    budgets = [_provider(state_url).budget(CRED, {"Heavy": GroupLimit(limit, window)}) for _ in range(2)]
    sent: list[float] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        budget = budgets[seed % 2]
        for _ in range(4):
            slot = budget.acquire("Heavy")
            with lock:
                sent.append(time.time())
            time.sleep(rnd.uniform(0, 0.01))
            budget.release(slot)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(sent) == 16
    sent.sort()
    assert max(sum(1 for t in sent if start <= t < start + window) for start in sent) <= limit
