"""What the sandbox has served, for benchmarks and tests to assert on."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


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

    def request(self, endpoint: str, group: str | None) -> None:
        with self._lock:
            self.requests += 1
            self.by_endpoint[endpoint] += 1
            if group:
                self.by_group[group] += 1

    def response(self, status: int) -> None:
        with self._lock:
            self.by_status[status] += 1
            if status == 429:
                self.throttled += 1

    def removed(self, kind: str, n: int) -> None:
        with self._lock:
            self.deleted[kind] += n

    def sent(self, n: int) -> None:
        with self._lock:
            self.bytes_sent += n

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
