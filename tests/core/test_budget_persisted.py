"""What the state-store backend adds to the contract: the windows outlive the process.

A "restarted process" is a second provider on the same state database (what the next `rcetl run`
opens); a "killed process" is one that acquired a slot and never released it. The end-to-end
version with real SIGKILLs and the sandbox's counters is tests/reliability/test_budget_restart.py.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rcetl.budget import GroupLimit
from rcetl.budget.persisted import JournalledBudgetProvider

from .conftest import in_threads

CRED = "cred-1"


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def _provider(url: str, **kwargs) -> JournalledBudgetProvider:
    return JournalledBudgetProvider(url, **kwargs)


def _restart(before: JournalledBudgetProvider, url: str, **kwargs) -> JournalledBudgetProvider:
    """The next process: what the last one journalled "a moment later" (releases, penalties,
    learned limits) is written by then; only slots are written before their request leaves."""
    before.flush()
    return _provider(url, **kwargs)


def _heavy_across_a_restart(url: str, limit: int, window: float) -> tuple[Any, Callable[[], Any]]:
    """CRED's budget of ``limit`` Heavy requests per ``window`` s in this process, and how to get
    the same budget in the next process (see :func:`_restart`)."""
    defaults = {"Heavy": GroupLimit(limit, window)}
    old = _provider(url)
    return old.budget(CRED, defaults), lambda: _restart(old, url).budget(CRED, defaults)


def test_a_restarted_process_waits_for_what_the_last_one_sent(state_url):
    before, restart = _heavy_across_a_restart(state_url, 3, 0.6)
    first = time.time()
    for _ in range(3):
        before.release(before.acquire("Heavy"))
    after = restart()
    assert after.snapshot()["Heavy"].used == 3
    after.release(after.acquire("Heavy"))
    assert time.time() - first >= 0.6


def test_a_penalty_from_a_429_survives_a_restart(state_url):
    before, restart = _heavy_across_a_restart(state_url, 10, 0.3)
    punished = time.time()  # before: the penalty starts at the release, no earlier
    before.release(before.acquire("Heavy"), retry_after=0.8)
    after = restart()
    assert after.snapshot()["Heavy"].penalty_remaining > 0.5
    after.release(after.acquire("Heavy"))
    assert time.time() - punished >= 0.8


def test_learned_limits_survive_a_restart(state_url):
    before, restart = _heavy_across_a_restart(state_url, 10, 60)
    before.release(before.acquire("Heavy"), limit=4, remaining=3, window=60)
    assert restart().snapshot()["Heavy"].limit == 4


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


def test_a_slot_is_journalled_before_acquire_returns(state_url):
    # Killed right after acquire (its request on the wire, nothing flushed): the slot is there.
    defaults = {"Heavy": GroupLimit(1, 0.4)}
    taken = time.time()
    _provider(state_url).budget(CRED, defaults).acquire("Heavy")
    restarted = _provider(state_url).budget(CRED, defaults)  # no flush: nothing written later counts
    assert restarted.snapshot()["Heavy"].used == 1
    restarted.release(restarted.acquire("Heavy"))
    assert time.time() - taken >= 0.4


def test_a_re_stamp_moves_the_journalled_slot_to_the_response(state_url):
    defaults = {"Heavy": GroupLimit(1, 0.3)}
    old = _provider(state_url, in_flight_lease=30)
    budget = old.budget(CRED, defaults)
    slot = budget.acquire("Heavy")
    budget.release(slot)
    released = time.time()
    restarted = _restart(old, state_url, in_flight_lease=30).budget(CRED, defaults)
    restarted.release(restarted.acquire("Heavy"))
    # the released stamp counts, not the in-flight one (acquire + 2-window lease + window = 0.9 s)
    assert 0.25 <= time.time() - released < 0.8


def test_a_limit_learned_before_a_restart_needs_no_probe(state_url):
    budget, restart = _heavy_across_a_restart(state_url, 10, 60)
    budget.release(budget.acquire("Heavy"), limit=4, remaining=3, window=60)
    restarted = restart()
    start = time.monotonic()
    for _ in range(3):
        restarted.acquire("Heavy")  # in flight together at once: the plan is known already
    assert time.monotonic() - start < 2


def _slot_rows(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM rcetl_budget_slots WHERE slot NOT LIKE '~%'")).scalar()
    finally:
        engine.dispose()


def test_slots_of_a_group_that_cannot_bind_are_not_journalled(state_url):
    """A limit no RingCentral plan comes near (an unlimited test server) is not paced, so a restart
    cannot overrun it: no write on its requests' path. A binding group is journalled as ever."""
    old = _provider(state_url)
    budget = old.budget(CRED, {"Heavy": GroupLimit(10, 60.0), "Light": GroupLimit(50, 60.0)})
    budget.release(budget.acquire("Light"), limit=1_000_000_000, remaining=999_999_999, window=60)
    for _ in range(5):
        budget.release(budget.acquire("Light"), limit=1_000_000_000, remaining=999_999_999, window=60)
    old.flush()
    unbound = _slot_rows(state_url)
    assert unbound == 1  # only the probe, sent before the limit was known
    for _ in range(3):
        budget.release(budget.acquire("Heavy"), limit=10, remaining=5, window=60)
    old.flush()
    assert _slot_rows(state_url) == unbound + 3
    old.close()


# --- the write path: slots taken together share a transaction; a write waits for the engine's ---


def test_slots_taken_together_are_all_journalled_and_seen_by_the_next_process(state_url):
    defaults = {"Medium": GroupLimit(40, 60.0)}
    provider = JournalledBudgetProvider(state_url)
    budget = provider.budget(CRED, defaults)
    budget.release(budget.acquire("Medium"), limit=40, remaining=39, window=60)  # the probe: limit known
    start = threading.Barrier(30)
    taken = []

    def take(_: int) -> None:
        start.wait()
        taken.append(budget.acquire("Medium"))  # 30 threads at once: a burst of one window

    in_threads(take, 30, timeout=10)
    assert len(taken) == 30
    assert _slot_rows(state_url) == 31  # every slot written before its request could leave
    provider.close()
    restarted = JournalledBudgetProvider(state_url).budget(CRED, defaults)
    assert restarted.snapshot()["Medium"].used == 31


def test_a_journal_write_waits_for_another_writer_of_the_state_database(state_url):
    defaults = {"Heavy": GroupLimit(10, 60.0)}
    provider = JournalledBudgetProvider(state_url)
    budget = provider.budget(CRED, defaults)
    budget.release(budget.acquire("Heavy"), limit=10, remaining=9, window=60)
    provider.flush()
    # The engine commits a checkpoint (or the blob ledger a batch) on another connection meanwhile.
    other = sqlite3.connect(state_url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    got = threading.Event()
    waiter = threading.Thread(target=lambda: (budget.acquire("Heavy"), got.set()))
    waiter.start()
    assert not got.wait(0.3)  # the slot is not handed out before it is journalled
    other.execute("COMMIT")
    other.close()
    assert got.wait(10)
    waiter.join(5)
    assert _slot_rows(state_url) == 2
    provider.close()
