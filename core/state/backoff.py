"""When a failed item is tried again: exponential backoff, so a broken item costs little budget."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """``base * 2 ** (attempts - 1)`` seconds, capped: 1 min, 2 min, 4 min ... at most a day."""

    base: float = 60.0
    cap: float = 24 * 3600.0

    def __call__(self, attempts: int) -> float:
        # min() before the power would overflow for an item that failed a thousand times.
        exponent = max(0, attempts - 1)
        if exponent > 62:
            return self.cap
        return min(self.cap, self.base * (2**exponent))
