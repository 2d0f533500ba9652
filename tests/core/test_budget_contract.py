"""The semantics every budget backend must share (docs/budgets.md), run against each backend.

Windows are a fraction of a second so the suite stays fast; every timing assertion is a lower
bound the budget guarantees (it cannot let a request go earlier) or a loose upper bound.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid

import pytest

from rcetl.budget import Budget, GroupLimit
from rcetl.budget.memory import MemoryBudget
from tests.services import require_module, service_url

from .conftest import in_threads

REDIS_URL = os.environ.get("RCETL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_or_skip():
    # tests/services.py: skip on a laptop without Redis, fail on CI.
    global REDIS_URL
    REDIS_URL = service_url("REDIS")


@pytest.fixture(params=["memory", "state-store", "redis"])
def make_budget(request, tmp_path):
    """A factory of fresh budgets of the backend under test, isolated from every other test."""
    if request.param == "memory":
        yield lambda defaults: MemoryBudget(defaults)
        return
    if request.param == "state-store":
        from rcetl.budget.persisted import JournalledBudgetProvider

        journalled = JournalledBudgetProvider(f"sqlite:///{tmp_path / 'state.db'}")
        yield lambda defaults: journalled.budget(f"cred-{uuid.uuid4().hex}", defaults)
        journalled.close()
        return
    _redis_or_skip()
    RedisBudgetProvider = require_module("rcetl.budget.redis", "pip install -e '.[redis]'").RedisBudgetProvider

    provider = RedisBudgetProvider(REDIS_URL, prefix=f"rcetl-test-{uuid.uuid4().hex}")
    yield lambda defaults: provider.budget(f"cred-{uuid.uuid4().hex}", defaults)
    provider.clear()


def _send(budget: Budget, group: str, **headers) -> float:
    slot = budget.acquire(group)
    sent = time.monotonic()
    budget.release(slot, **headers)
    return sent


def test_eleventh_request_waits_for_the_first_slot_to_expire(make_budget):
    budget = make_budget({"Heavy": GroupLimit(10, 0.4)})
    waits: list[tuple[str, float]] = []
    budget.on_wait = lambda group, seconds: waits.append((group, seconds))
    start = time.monotonic()
    first = _send(budget, "Heavy")
    for _ in range(9):
        _send(budget, "Heavy")
    assert waits == []
    assert time.monotonic() - start < 0.4
    eleventh = _send(budget, "Heavy")
    assert eleventh - first >= 0.4
    assert eleventh - start < 2.5
    assert len(waits) == 1 and waits[0][0] == "Heavy" and 0 < waits[0][1] <= 0.4 + 0.05
    state = budget.snapshot()["Heavy"]
    assert (state.sent, state.limit) == (11, 10)
    assert 1 <= state.used <= 10  # slots 2..10 were stamped right after the first: they age out with it
    assert state.waited > 0


def test_remaining_zero_from_headers_blocks_until_the_oldest_slot_expires(make_budget):
    budget = make_budget({"Heavy": GroupLimit(10, 0.3)})
    first = _send(budget, "Heavy", limit=10, remaining=0, window=0.3)
    second = _send(budget, "Heavy")
    assert second - first >= 0.3


def test_retry_after_blocks_the_whole_group_and_counts_throttled(make_budget):
    budget = make_budget({"Heavy": GroupLimit(10, 0.3), "Light": GroupLimit(50, 0.3)})
    start = _send(budget, "Heavy", retry_after=0.5)
    state = budget.snapshot()["Heavy"]
    assert state.throttled == 1 and 0 < state.penalty_remaining <= 0.5
    light = _send(budget, "Light")  # other groups are counted separately
    assert light - start < 0.3
    after = _send(budget, "Heavy")
    assert after - start >= 0.5
    assert budget.snapshot()["Heavy"].penalty_remaining == 0


def test_limits_are_learned_from_headers(make_budget):
    budget = make_budget({"Heavy": GroupLimit(10, 0.3)})
    first = _send(budget, "Heavy", limit=3, remaining=2, window=0.3)
    _send(budget, "Heavy")
    _send(budget, "Heavy")
    assert budget.snapshot()["Heavy"].limit == 3
    fourth = _send(budget, "Heavy")
    assert fourth - first >= 0.3


def test_headers_can_raise_a_default_but_not_a_pipeline_ceiling(make_budget):
    budget = make_budget({"Heavy": GroupLimit(10, 60), "Light": GroupLimit(50, 60)})
    budget.set_limit("Light", GroupLimit(20, 60))
    _send(budget, "Heavy", limit=40, remaining=39, window=60)
    _send(budget, "Light", limit=1000, remaining=999, window=60)
    snap = budget.snapshot()
    assert snap["Heavy"].limit == 40
    assert snap["Light"].limit == 20


def test_an_unknown_group_gets_the_smallest_known_limit(make_budget):
    budget = make_budget(
        {"Heavy": GroupLimit(10, 60), "Auth": GroupLimit(5, 60), "Light": GroupLimit(50, 60)}
    )
    _send(budget, "Mystery")
    state = budget.snapshot()["Mystery"]
    assert (state.limit, state.window, state.used) == (5, 60, 1)


def test_waiters_are_served_by_priority_then_arrival(make_budget):
    budget = make_budget({"Heavy": GroupLimit(1, 0.15)})
    _send(budget, "Heavy")  # the window is now full for 0.15 s
    order: list[str] = []
    threads = []
    for name, priority in [("download-1", 10), ("download-2", 10), ("page-1", 0), ("page-2", 0)]:

        def run(name=name, priority=priority):
            slot = budget.acquire("Heavy", priority=priority)
            order.append(name)
            budget.release(slot)

        thread = threading.Thread(target=run)
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 2
        while _waiting(budget, "Heavy") < len(threads) and time.monotonic() < deadline:
            time.sleep(0.005)
    for thread in threads:
        thread.join(5)
    assert order == ["page-1", "page-2", "download-1", "download-2"]


def _waiting(budget, group: str) -> int:
    return len(budget._lines[group.lower()].waiting)


def test_many_threads_never_exceed_the_limit_in_any_sliding_window(make_budget):
    limit, window = 6, 0.25
    budget = make_budget({"Heavy": GroupLimit(limit, window)})
    sent: list[float] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(4):
            slot = budget.acquire("Heavy", priority=rnd.choice([0, 10]))
            with lock:
                sent.append(time.monotonic())
            time.sleep(rnd.uniform(0, 0.02))  # the response's latency
            budget.release(slot)

    in_threads(worker, 6, timeout=20)
    assert len(sent) == 24
    sent.sort()
    busiest = max(sum(1 for t in sent if start <= t < start + window) for start in sent)
    assert busiest == limit  # never more, and the budget is actually spent (no idle slack)


def test_release_is_idempotent_and_checks_its_argument(make_budget):
    budget = make_budget({"Heavy": GroupLimit(2, 60)})
    slot = budget.acquire("Heavy")
    budget.release(slot)
    budget.release(slot)
    assert budget.snapshot()["Heavy"].used == 1
    with pytest.raises(TypeError):
        budget.release("not a slot")


def test_the_first_request_of_a_group_goes_alone_until_its_answer_is_in(make_budget):
    # The default allows 10 at once, but the real plan may be lower: it is known from the first
    # answer's headers, so nothing else of the group leaves before that answer.
    budget = make_budget({"Heavy": GroupLimit(10, 60)})
    first = budget.acquire("Heavy")
    second = threading.Event()
    threading.Thread(target=lambda: (budget.acquire("Heavy"), second.set()), daemon=True).start()
    assert not second.wait(0.3)
    budget.release(first, limit=3, remaining=2, window=60)
    assert second.wait(5)
    budget.acquire("Heavy")  # the rest go at once now, up to the limit the answer taught
    assert budget.snapshot()["Heavy"].used == 3


def test_a_first_answer_without_headers_also_lets_the_rest_go(make_budget):
    budget = make_budget({"Heavy": GroupLimit(10, 60)})
    budget.release(budget.acquire("Heavy"))  # a server that sends no rate headers
    start = time.monotonic()
    for _ in range(5):
        budget.acquire("Heavy")  # in flight together, within the default
    assert time.monotonic() - start < 2
