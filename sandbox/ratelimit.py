"""RingCentral's user-level rate limits: a sliding 60 s window per (user, app) and group, and a
60 s penalty once the limit is hit that restarts with every request sent during it."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from .clock import ScaledClock

WINDOW = 60
PENALTY = 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    group: str
    limit: int
    remaining: int
    shown: bool = True  # False: the X-Rate-Limit-* headers are left out (Retry-After stays)

    def headers(self) -> dict[str, str]:
        h = {
            "X-Rate-Limit-Group": self.group.lower(),
            "X-Rate-Limit-Limit": str(self.limit),
            "X-Rate-Limit-Remaining": str(self.remaining),
            "X-Rate-Limit-Window": str(WINDOW),
        } if self.shown else {}
        if not self.allowed:
            h["Retry-After"] = str(PENALTY)
        return h


class _Bucket:
    __slots__ = ("hits", "penalty_until")

    def __init__(self) -> None:
        self.hits: deque[float] = deque()
        self.penalty_until = float("-inf")


class RateLimiter:
    def __init__(self, clock: ScaledClock, plan: Mapping[str, int], enabled: bool = True, headers: bool = True) -> None:
        self.clock, self.plan, self.enabled, self.headers = clock, dict(plan), enabled, headers
        self._buckets: dict[tuple, _Bucket] = {}
        self._lock = threading.Lock()

    def hit(self, user: Hashable, group: str) -> Verdict:
        limit = self.plan[group]
        shown = self.headers
        if not self.enabled:
            return Verdict(True, group, limit, limit, shown)
        now = self.clock.now()
        with self._lock:
            b = self._buckets.setdefault((user, group), _Bucket())
            if now < b.penalty_until:
                b.penalty_until = now + PENALTY  # polling during the penalty prolongs it
                return Verdict(False, group, limit, 0, shown)
            while b.hits and b.hits[0] <= now - WINDOW:
                b.hits.popleft()
            if len(b.hits) >= limit:
                b.penalty_until = now + PENALTY
                return Verdict(False, group, limit, 0, shown)
            b.hits.append(now)
            return Verdict(True, group, limit, limit - len(b.hits), shown)

    def punish(self, user: Hashable, group: str) -> Verdict:
        """Start a penalty as if the limit had been hit (a fault-injected 429 storm)."""
        with self._lock:
            b = self._buckets.setdefault((user, group), _Bucket())
            b.penalty_until = self.clock.now() + PENALTY
        return Verdict(False, group, self.plan[group], 0, self.headers)
