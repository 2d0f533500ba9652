"""Coordination through Redis, for Celery workers and runs spread over several machines.

Locks are redis-py's :class:`redis.lock.Lock` (SET NX with a token, released by a Lua script that
checks the token). A lock carries a lease, so a holder that dies frees it when the lease runs
out; while the holder lives, a daemon thread renews the lease every third of its length, so a
critical section may take as long as it needs (a token refresh waiting on a slow server) without
another process getting in.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

from .coordination import Coordinator

#: How long a lock outlives a holder that died without releasing it.
DEFAULT_LEASE = 30.0


class RedisCoordinator(Coordinator):
    """Named locks and JSON values in the Redis at ``url``, under keys starting with ``prefix``."""

    def __init__(self, url: str, prefix: str = "rcetl", *, lease: float = DEFAULT_LEASE) -> None:
        import redis  # lazily: only distributed runs need the package

        self._client = redis.Redis.from_url(url)
        self.prefix = prefix
        self.lease = lease

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}:{kind}:{name}"

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float = 60.0) -> Iterator[None]:
        from redis.exceptions import LockError

        lock = self._client.lock(
            self._key("lock", name),
            timeout=self.lease,
            blocking=True,
            blocking_timeout=timeout,
            # The renewing thread must see the token, so it cannot live in a thread-local.
            thread_local=False,
        )
        if not lock.acquire():
            raise TimeoutError(f"lock {name!r} not acquired in {timeout}s")
        stop = threading.Event()
        renewer = threading.Thread(
            target=self._renew, args=(lock, stop), name=f"rcetl-lock-{name}", daemon=True
        )
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            try:
                lock.release()
            except LockError:
                pass  # the lease ran out (the process was frozen longer than it): nothing left to free

    def _renew(self, lock: Any, stop: threading.Event) -> None:
        while not stop.wait(self.lease / 3):
            try:
                lock.reacquire()  # back to a full lease
            except Exception:
                return  # lost the lock or the connection: the lease decides from here

    def get(self, name: str) -> dict[str, Any] | None:
        raw = self._client.get(self._key("value", name))
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def put(self, name: str, value: dict[str, Any]) -> None:
        self._client.set(self._key("value", name), json.dumps(value))

    def clear(self) -> int:
        """Delete every lock and value under this prefix (tests, or a fresh start)."""
        keys = [
            *self._client.scan_iter(match=f"{self.prefix}:lock:*"),
            *self._client.scan_iter(match=f"{self.prefix}:value:*"),
        ]
        return int(self._client.delete(*keys)) if keys else 0
