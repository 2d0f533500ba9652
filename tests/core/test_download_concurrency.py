"""Downloads at once where no budget binds: a limit set by latency (TCP Vegas's rule), and a pool
whose workers wait for a slot before they take a job."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from rcetl.executors.concurrency import ALPHA, BETA, LatencyLimit, LimitedThreadPool
from rcetl.executors.pools import PoolPerCredential, threads_from_budget

LOWEST = 0.001  # the latency of a download that waits for nothing


def _rounds(limit: LatencyLimit, latency_at, rounds: int = 60) -> list[int]:
    """Feed ``rounds`` rounds of samples, each the latency ``latency_at(limit)`` gives at the
    current limit; the limits seen after each round."""
    seen = []
    for _ in range(rounds):
        for _ in range(limit.limit):
            limit.sample(latency_at(limit.limit))
        seen.append(limit.limit)
    return seen


def test_the_limit_shrinks_to_what_keeps_the_server_busy_when_downloads_queue() -> None:
    """A server (or this process's CPU) that serves one download at a time: each download in
    flight adds one service time to every other's latency. Eight at once only queue: the limit
    falls to where one to three wait (Vegas's band), and stays there."""
    limit = LatencyLimit(8)
    limit.sample(LOWEST)  # one download alone: the floor
    seen = _rounds(limit, lambda n: n * LOWEST)
    assert seen[0] == 7 and seen[1] == 6  # one step per round, from the fixed size down
    # queued = n * (1 - 1/n) = n - 1: within [ALPHA, BETA] for n = 2..4
    assert all(ALPHA + 1 <= n <= BETA + 1 for n in seen[10:]), seen
    assert seen[-1] == seen[-10]  # settled, not swinging


def test_the_limit_stays_at_its_maximum_when_latency_does_not_grow_with_it() -> None:
    """A server 100 ms away: latency is the distance, whatever runs at once; every download slot is
    worth having, and the limit never leaves the configured size."""
    limit = LatencyLimit(8)
    jitter = iter([1.0, 1.04, 0.98, 1.02] * 200)
    seen = _rounds(limit, lambda n: 0.1 * next(jitter), rounds=40)
    assert set(seen) == {8}


def test_the_limit_grows_back_once_the_queue_is_gone() -> None:
    limit = LatencyLimit(8)
    limit.sample(LOWEST)
    _rounds(limit, lambda n: n * LOWEST, rounds=20)
    assert limit.limit <= 4
    seen = _rounds(limit, lambda n: LOWEST * 1.1, rounds=10)  # the contention went away
    assert seen[-1] == 8 and seen == sorted(seen)


def test_downloads_without_a_latency_change_nothing() -> None:
    limit = LatencyLimit(4)
    for _ in range(100):
        assert limit.sample(None) is False
    assert limit.limit == 4


def test_the_limit_never_leaves_its_bounds() -> None:
    limit = LatencyLimit(8, minimum=5)
    limit.sample(LOWEST)
    _rounds(limit, lambda n: 50 * n * LOWEST)  # far more queued than BETA at any size
    assert limit.limit == 5
    with pytest.raises(ValueError):
        LatencyLimit(2, minimum=3)


class _Result:
    def __init__(self, first_byte_s: float | None) -> None:
        self.first_byte_s = first_byte_s


def _counting_job(state: dict, lock: threading.Lock, latency: float | None, hold: float = 0.02):
    def job() -> _Result:
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(hold)
        with lock:
            state["now"] -= 1
        return _Result(latency)
    return job


def test_a_pool_runs_no_more_jobs_at_once_than_its_limit_allows() -> None:
    state, lock = {"now": 0, "most": 0}, threading.Lock()
    pool = LimitedThreadPool(6, LatencyLimit(2))
    futures = [pool.submit(_counting_job(state, lock, None)) for _ in range(12)]
    assert [type(f.result(10)) for f in futures] == [_Result] * 12
    pool.shutdown()
    assert state["most"] == 2  # six threads, two slots


def test_a_pool_follows_its_limit_down_while_it_works() -> None:
    """Jobs whose latency grows with the jobs in flight: the pool ends up running fewer at once
    than it has threads, with no job lost."""
    state, lock = {"now": 0, "most": 0}, threading.Lock()
    limit = LatencyLimit(8)
    limit.sample(LOWEST)
    pool = LimitedThreadPool(8, limit)
    futures = [pool.submit(lambda: _Result(max(limit.held, 1) * LOWEST)) for _ in range(400)]
    assert all(f.result(10).first_byte_s for f in futures)
    assert limit.limit <= 4
    late = [pool.submit(_counting_job(state, lock, limit.held * LOWEST, hold=0.005)) for _ in range(40)]
    for f in late:
        f.result(10)
    pool.shutdown()
    assert state["most"] <= 4 + 1  # the limit may move by one while the last jobs run


def test_a_pool_wakes_its_waiting_workers_when_the_limit_grows() -> None:
    """Shrunk to three slots (Vegas's band: fewer can never hold more than BETA queued), then
    latency falls back to its floor: the limit grows, and workers that gave their slot back take
    the new ones (were they not woken, three would still do all)."""
    limit = LatencyLimit(6)
    limit.sample(LOWEST)
    _rounds(limit, lambda n: 50 * n * LOWEST, rounds=10)
    assert limit.limit == 3
    pool = LimitedThreadPool(6, limit)
    state, lock = {"now": 0, "most": 0}, threading.Lock()
    futures = [pool.submit(_counting_job(state, lock, LOWEST, hold=0.01)) for _ in range(60)]
    for f in futures:
        f.result(10)
    pool.shutdown()
    assert limit.limit == 6 and state["most"] >= 5


def test_a_pool_hands_exceptions_to_the_caller_and_keeps_working() -> None:
    pool = LimitedThreadPool(2, LatencyLimit(2))
    bad = pool.submit(lambda: 1 / 0)
    good = pool.submit(lambda: 42)
    with pytest.raises(ZeroDivisionError):
        bad.result(5)
    assert good.result(5) == 42
    pool.shutdown()


def test_shutdown_ends_every_worker_also_those_waiting_for_a_slot() -> None:
    limit = LatencyLimit(1)
    pool = LimitedThreadPool(4, limit)
    gate, running = threading.Event(), threading.Event()
    first = pool.submit(lambda: running.set() or gate.wait(5))
    assert running.wait(5)  # the one slot is taken: the other three workers wait for it
    queued = [pool.submit(time.sleep, 0) for _ in range(5)]
    stopper = threading.Thread(target=pool.shutdown, kwargs={"cancel_futures": True})
    stopper.start()
    gate.set()
    stopper.join(5)
    assert not stopper.is_alive(), "a worker waiting for a slot was never woken"
    assert first.result(1) is True
    assert all(f.cancelled() or f.done() for f in queued)
    assert limit.held == 0
    with pytest.raises(RuntimeError):
        pool.submit(time.sleep, 0)


def _engine_with(limit: int):
    from rcetl.budget import GroupLimit
    from rcetl.budget.memory import MemoryBudget

    budget = MemoryBudget({"Heavy": GroupLimit(limit, 60)})
    return SimpleNamespace(connections={"rc": SimpleNamespace(credential="cred")},
                           budgets=SimpleNamespace(created={"cred": budget}))


@pytest.mark.parametrize(("plan", "auto", "limited"), [
    (10**9, True, True),    # no budget binds, size left to rcetl: limited by latency
    (40, True, False),      # RingCentral's limits: a thread per slot of the budget, none kept out
    (10**9, False, False),  # `executor.downloads` set in the pipeline: exactly that many
])
def test_only_a_pool_no_budget_binds_and_no_pipeline_sized_adapts(plan: int, auto: bool, limited: bool) -> None:
    engine = _engine_with(plan)
    pool = PoolPerCredential(8, sizer=(lambda conn: threads_from_budget(engine, conn)) if auto else None)
    routed = SimpleNamespace(origin={"connection": "rc"})
    assert pool.submit(lambda item: item.origin["connection"], routed).result(5) == "rc"
    pool.shutdown()
    assert ("rc" in pool.limits()) is limited
    assert pool.pools() == {"rc": 8 if plan > 64 else plan}


def test_a_run_says_why_fewer_downloads_ran_at_once_than_it_has_threads(caplog) -> None:
    engine = _engine_with(10**9)
    pool = PoolPerCredential(8, sizer=lambda conn: threads_from_budget(engine, conn))
    routed = SimpleNamespace(origin={"connection": "rc"})
    jobs = [pool.submit(lambda item, n=n: _Result(LOWEST if n == 0 else 20 * LOWEST), routed) for n in range(200)]
    for job in jobs:
        job.result(5)
    with caplog.at_level("INFO", logger="rcetl.executors.pools"):
        pool.shutdown()
    limit = pool.limits()["rc"].limit
    assert limit < 8
    assert f"'rc': {limit} of its 8 download threads were downloading at once" in caplog.text
