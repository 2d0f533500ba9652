"""Stopping a run promptly: one signal that every wait of the run watches.

Ctrl-C or SIGTERM may arrive while threads wait for a rate budget (a window, a 429 penalty),
sleep between retries, or stream a large file. Each of those waits watches the run's
:class:`StopSignal`, so a stopping run ends within moments instead of after the longest wait, and
nothing half-done is kept: a wait cut short raises :class:`RunStopped`, the item is dropped (not
queued as failed) and the checkpoint stays where it was, so the next run reads it again.

Plugins reach the run's signal with :func:`stop_signal` and sleep with ``signal.sleep(seconds)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from .errors import RcetlError

__all__ = ["RunStopped", "StopSignal", "stop_signal"]



class RunStopped(RcetlError):
    """A wait ended because the run is stopping; nothing is wrong with the item it was for."""


class StopSignal:
    """A :class:`threading.Event` (``set``, ``is_set``, ``wait``) that also runs callbacks when set,
    so waits that are not on this event (a budget's waiting line) can be woken too."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self.reason = "the run is stopping"

    def set(self, reason: str | None = None) -> None:
        with self._lock:
            if reason:
                self.reason = reason
            first = not self._event.is_set()
            self._event.set()
            callbacks = list(self._callbacks) if first else []
        for callback in callbacks:
            callback()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once when the signal is set (at once if it already is)."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def sleep(self, seconds: float) -> None:
        """Sleep, or raise :class:`RunStopped` as soon as the run stops."""
        if self._event.wait(max(seconds, 0.0)):
            raise RunStopped(self.reason)

    def check(self) -> None:
        """Raise :class:`RunStopped` if the run is stopping (between chunks of a long transfer)."""
        if self._event.is_set():
            raise RunStopped(self.reason)


_NEVER = StopSignal()  # for plugins used outside a run (tests, the sandbox): never set


class _HasStop(Protocol):
    """A :class:`rcetl.RunContext` as this module sees it (naming the class would be an import circle)."""

    stop: StopSignal


def stop_signal(ctx: _HasStop | None) -> StopSignal:
    """The stop signal of the run ``ctx`` belongs to (``ctx.stop``; one that never fires outside a run)."""
    return ctx.stop if ctx is not None else _NEVER


def attach(ctx: _HasStop, signal: StopSignal) -> None:
    """Make ``signal`` the run's stop signal (the engine does this when it opens a run)."""
    ctx.stop = signal
