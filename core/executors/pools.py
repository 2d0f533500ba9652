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
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any


def connection_of(args: tuple[Any, ...]) -> str:
    """The connection a download job is for: its first argument is the engine's routed record."""
    origin = getattr(args[0], "origin", None) if args else None
    return str((origin or {}).get("connection", ""))


class PoolPerCredential(Executor):
    """An executor that keeps one thread pool of ``size`` threads per connection, made on first use."""

    def __init__(self, size: int, key: Callable[[tuple[Any, ...]], str] = connection_of,
                 thread_name_prefix: str = "rcetl-blob") -> None:
        self.size = max(1, size)
        self._key = key
        self._prefix = thread_name_prefix
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._lock = threading.Lock()
        self._shut = False

    def _pool(self, key: str) -> ThreadPoolExecutor:
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new downloads after shutdown")
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = ThreadPoolExecutor(
                    max_workers=self.size, thread_name_prefix=f"{self._prefix}-{key or 'default'}")
            return pool

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        context = contextvars.copy_context()
        return self._pool(self._key(args)).submit(context.run, fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut = True
            pools = list(self._pools.values())
        for pool in pools:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def pools(self) -> dict[str, int]:
        """Connection -> threads, for `rcetl workers status` and tests."""
        with self._lock:
            return {k: self.size for k in self._pools}
