"""The sandbox's clock: real time, optionally running ``time_scale`` times faster.

Only rate windows, penalties and token lifetimes use it; data timestamps are never scaled.
Every duration handed to the outside world stays in API seconds (``Retry-After: 60``).
"""

from __future__ import annotations

import time


class ScaledClock:
    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = float(time_scale)
        self._origin = time.monotonic()

    def now(self) -> float:
        """API seconds elapsed since the sandbox started (monotonic)."""
        return (time.monotonic() - self._origin) * self.time_scale
