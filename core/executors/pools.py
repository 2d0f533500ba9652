"""Download threads per credential, so that one account waiting for its budget never holds a
thread another account could use.

A download thread blocks inside ``budget.acquire`` while its account's window is spent. With one
pool shared by every task of a worker process, the threads of the account that waits fill the
pool and the other account's downloads queue behind them although its budget is unused (measured:
2-8 idle Heavy windows in a row on two Celery tasks). A pool per connection -- one connection is
one credential, one budget -- keeps each account's waiting to its own threads.

Every job runs in a copy of the submitting thread's context, so what a task counts per request
(:mod:`rcetl.budget.tally`) follows it into the download threads.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

from .concurrency import LatencyLimit, LimitedThreadPool

log = logging.getLogger(__name__)


def connection_of(args: tuple[Any, ...]) -> str:
    """The connection a download job is for: its first argument is a routed record."""
    origin = getattr(args[0], "origin", None) if args else None
    return str((origin or {}).get("connection", ""))


#: Bounds of a pool sized from a budget: a thread per request the budget lets go at once, never fewer
#: than the old fixed default; a budget above AUTO_MAX does not bind, and the configured size is used.
AUTO_MIN, AUTO_MAX = 8, 64


def threads_from_budget(opened: Any, connection: str) -> int | None:
    """Download threads for ``connection`` of an opened pipeline: the largest per-window limit of its
    credential's budget.

    A download thread holds one request at a time; when a window frees, every one of its slots
    should find a thread waiting for it, or the budget goes unused until a download ends (measured:
    8 threads under RingCentral's Medium limit of 40 left 22 % of the window idle). Idle threads
    cost a little memory; the spool holds at most one binary per busy thread."""
    conn = getattr(opened, "connections", {}).get(connection)
    credential = getattr(conn, "credential", None)
    budgets = getattr(opened, "budgets", None)
    budget = budgets.created.get(credential) if budgets is not None and credential else None
    if budget is None:
        return None
    limits = [state.limit for state in budget.snapshot().values()]
    if not limits or max(limits) > AUTO_MAX:
        # a budget that large does not bind (an unlimited test server): the network and the
        # sinks set the pace, and the configured size is the right one
        return None
    return max(max(limits), AUTO_MIN)


class PoolPerCredential(Executor):
    """An executor that keeps one thread pool per connection, made on first use: of ``size``
    threads, or of ``sizer(connection)`` threads when a sizer is given and answers. When a sizer
    is given and does not answer (no budget binds the connection), the pool has ``size`` threads
    and a :class:`~rcetl.executors.concurrency.LatencyLimit` decides how many run a job at once,
    from the ``first_byte_s`` of what each job returns (see :mod:`rcetl.executors.concurrency`)."""

    def __init__(self, size: int, key: Callable[[tuple[Any, ...]], str] = connection_of,
                 thread_name_prefix: str = "rcetl-blob",
                 sizer: Callable[[str], int | None] | None = None) -> None:
        self.size = max(1, size)
        self._sizer = sizer
        self._sizes: dict[str, int] = {}
        self._key = key
        self._prefix = thread_name_prefix
        self._pools: dict[str, Executor] = {}
        self._limits: dict[str, LatencyLimit] = {}
        self._lock = threading.Lock()
        self._shut = False

    def _pool(self, key: str) -> Executor:
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new downloads after shutdown")
            pool = self._pools.get(key)
            if pool is None:
                sized = self._sizer(key) if self._sizer else None
                self._sizes[key] = size = sized or self.size
                name = f"{self._prefix}-{key or 'default'}"
                if self._sizer is not None and sized is None:
                    limit = self._limits[key] = LatencyLimit(size)
                    pool = LimitedThreadPool(size, limit, thread_name_prefix=name)
                else:
                    pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)
                self._pools[key] = pool
            return pool

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        context = contextvars.copy_context()
        return self._pool(self._key(args)).submit(context.run, fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut = True
            pools = list(self._pools.values())
            limits = dict(self._limits)
        for pool in pools:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)
        for key, limit in limits.items():
            if limit.limit < limit.maximum:  # say why fewer ran at once than the threads there were
                log.info("connection %r: %d of its %d download threads were downloading at once at the end; "
                         "more only queued (no rate budget binds it: docs/pipeline-format.md, \"Downloads at once\")",
                         key, limit.limit, limit.maximum)

    def pools(self) -> dict[str, int]:
        """Connection -> threads (for tests and diagnostics)."""
        with self._lock:
            return dict(self._sizes)

    def limits(self) -> dict[str, LatencyLimit]:
        """Connection -> the limit of jobs at once, for a connection no budget binds."""
        with self._lock:
            return dict(self._limits)

