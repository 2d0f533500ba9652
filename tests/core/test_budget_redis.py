"""What only the Redis backend promises: one budget per credential across processes."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid

import pytest

from rcetl.budget import GroupLimit
from tests.services import service_url

REDIS_URL = os.environ.get("RCETL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def prefix():
    # tests/services.py: skip on a laptop without Redis, fail on CI.
    global REDIS_URL
    REDIS_URL = service_url("REDIS")
    from rcetl.budget.redis import RedisBudgetProvider

    name = f"rcetl-test-{uuid.uuid4().hex}"
    yield name
    RedisBudgetProvider(REDIS_URL, prefix=name).clear()


def _spend(prefix: str, credential: str, limit: int, window: float, count: int, out) -> None:
    from rcetl.budget.redis import RedisBudgetProvider

    budget = RedisBudgetProvider(REDIS_URL, prefix=prefix).budget(
        credential, {"Heavy": GroupLimit(limit, window)}
    )
    for _ in range(count):
        slot = budget.acquire("Heavy")
        out.put(time.time())  # before release: the slot is re-stamped no earlier than this
        budget.release(slot)


def test_two_processes_sharing_a_credential_never_exceed_the_limit_together(prefix):
    limit, window = 4, 0.3
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    workers = [ctx.Process(target=_spend, args=(prefix, "shared", limit, window, 6, out)) for _ in range(2)]
    for proc in workers:
        proc.start()
    sent = sorted(out.get(timeout=30) for _ in range(12))
    for proc in workers:
        proc.join(10)
    assert [proc.exitcode for proc in workers] == [0, 0]
    busiest = max(sum(1 for t in sent if start <= t < start + window) for start in sent)
    assert busiest == limit
    assert sent[-1] - sent[0] >= 2 * window  # 12 requests at 4 a window need three windows


def test_separate_credentials_are_independent_and_one_credential_is_shared(prefix):
    from rcetl.budget.redis import RedisBudgetProvider

    defaults = {"Heavy": GroupLimit(2, 30)}
    here, there = RedisBudgetProvider(REDIS_URL, prefix=prefix), RedisBudgetProvider(REDIS_URL, prefix=prefix)
    for _ in range(2):
        here.budget("cred-a", defaults).release(here.budget("cred-a", defaults).acquire("Heavy"))
    # Another provider (another process or machine) sees cred-a's window as full ...
    assert there.budget("cred-a", defaults).snapshot()["Heavy"].used == 2
    # ... and cred-b's as empty: its first request goes at once.
    start = time.monotonic()
    there.budget("cred-b", defaults).release(there.budget("cred-b", defaults).acquire("Heavy"))
    assert time.monotonic() - start < 5
    assert there.budget("cred-b", defaults).snapshot()["Heavy"].used == 1


def test_penalties_and_learned_limits_are_shared(prefix):
    from rcetl.budget.redis import RedisBudgetProvider

    defaults = {"Heavy": GroupLimit(10, 60)}
    one = RedisBudgetProvider(REDIS_URL, prefix=prefix).budget("cred", defaults)
    other = RedisBudgetProvider(REDIS_URL, prefix=prefix).budget("cred", defaults)
    one.release(one.acquire("Heavy"), limit=3, remaining=2, window=60, retry_after=30)
    state = other.snapshot()["Heavy"]
    assert (state.limit, state.window, state.used) == (3, 60, 1)
    assert 25 < state.penalty_remaining <= 30
    assert state.throttled == 0 and one.snapshot()["Heavy"].throttled == 1  # counters are per process
