"""What the sandbox has served, for benchmarks and tests to assert on."""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

# The request log keeps the newest entries only, so a long benchmark does not grow without bound.
LOG_SIZE = 200_000


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_group: Counter[str] = Counter()
        self.by_endpoint: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.throttled = 0
        self.bytes_sent = 0
        self.requests = 0
        self.deleted: Counter[str] = Counter()  # what DELETE requests removed: recordings, calls, messages
        self._log: deque[list] = deque(maxlen=LOG_SIZE)  # [API time, group, status]; status filled in on response

    def request(self, endpoint: str, group: str | None, at: float | None = None) -> list | None:
        """Count a request; with ``at`` (sandbox clock) also log it, returning the entry to complete."""
        with self._lock:
            entry = None
            if at is not None:
                entry = [at, group, 0]
                self._log.append(entry)
            self.requests += 1
            self.by_endpoint[endpoint] += 1
            if group:
                self.by_group[group] += 1
            return entry

    def response(self, status: int, entry: list | None = None) -> None:
        with self._lock:
            if entry is not None:
                entry[2] = status
            self.by_status[status] += 1
            if status == 429:
                self.throttled += 1

    def removed(self, kind: str, n: int) -> None:
        with self._lock:
            self.deleted[kind] += n

    def sent(self, n: int) -> None:
        with self._lock:
            self.bytes_sent += n

    def log(self) -> list[tuple[float, str | None, int]]:
        with self._lock:
            return [(at, group, status) for at, group, status in self._log]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "by_group": dict(self.by_group),
                "by_endpoint": dict(self.by_endpoint),
                "by_status": {str(k): v for k, v in self.by_status.items()},
                "throttled": self.throttled,
                "bytes_sent": self.bytes_sent,
                "deleted": {k: self.deleted.get(k, 0) for k in ("recordings", "calls", "messages")},
            }
