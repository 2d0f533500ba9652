"""Who sent a request: per-run, per-task request counts, kept as each slot is taken.

A budget's own counters (``GroupState.sent``) belong to the budget object, which one worker
process shares between the tasks of any number of runs; subtracting snapshots attributes a
request to whichever task reports next, not to the one that sent it. So every ``acquire`` also
notes the request in the tallies *of the work it was made for*, named by a context variable that
the task sets and its threads inherit (the engine runs a task's reader and download threads in
the task's context). A :class:`RunLedger` in Redis is a tally that outlives the worker: a worker
killed mid-task has already counted what it sent, so the run's totals stay exact after a hand-back.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from typing import Any, Protocol


class Tally(Protocol):
    def note(self, credential: str, group: str, *, sent: int = 0, throttled: int = 0) -> None:
        """Count ``sent`` requests (and ``throttled`` 429s) of ``group`` sent with ``credential``."""


class RequestTally:
    """Counts in this process: credential -> group -> [sent, throttled]."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, dict[str, list[int]]] = {}

    def note(self, credential: str, group: str, *, sent: int = 0, throttled: int = 0) -> None:
        with self._lock:
            cell = self.counts.setdefault(credential, {}).setdefault(group, [0, 0])
            cell[0] += sent
            cell[1] += throttled

    def requests(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {c: {g: v[0] for g, v in groups.items() if v[0]} for c, groups in self.counts.items()}

    def throttled(self) -> dict[str, int]:
        with self._lock:
            return {c: sum(v[1] for v in groups.values()) for c, groups in self.counts.items()
                    if any(v[1] for v in groups.values())}


#: Kept a week: long enough for any run to finish and be summarised, short enough to clean itself.
LEDGER_TTL_SECONDS = 7 * 24 * 3600


class RunLedger:
    """A run's request counts in Redis (one hash per run), written by every worker as it sends."""

    def __init__(self, client: Any, prefix: str, run_id: str) -> None:
        self._client = client
        self.key = f"{prefix}:run:{run_id}:requests"

    @classmethod
    def from_url(cls, url: str, prefix: str, run_id: str) -> RunLedger:
        import redis  # lazily: only runs on shared budgets need it

        return cls(redis.Redis.from_url(url), prefix, run_id)

    def note(self, credential: str, group: str, *, sent: int = 0, throttled: int = 0) -> None:
        pipe = self._client.pipeline(transaction=False)
        if sent:
            pipe.hincrby(self.key, f"sent|{credential}|{group}", sent)
        if throttled:
            pipe.hincrby(self.key, f"throttled|{credential}|{group}", throttled)
        pipe.expire(self.key, LEDGER_TTL_SECONDS)
        pipe.execute()

    def read(self) -> RequestTally:
        tally = RequestTally()
        for field, value in self._client.hgetall(self.key).items():
            kind, credential, group = (field.decode() if isinstance(field, bytes) else field).split("|", 2)
            tally.note(credential, group, **{kind: int(value)})
        return tally

    def forget(self) -> None:
        self._client.delete(self.key)


_current: contextvars.ContextVar[tuple[Tally, ...]] = contextvars.ContextVar("rcetl_request_tallies", default=())


@contextlib.contextmanager
def counting(*tallies: Tally) -> Iterator[None]:
    """Count every request this context (and threads started in a copy of it) sends in ``tallies``."""
    token = _current.set(_current.get() + tallies)
    try:
        yield
    finally:
        _current.reset(token)


def note(credential: str, group: str, *, sent: int = 0, throttled: int = 0) -> None:
    """Called by budgets for each slot taken (and each 429 reported)."""
    for tally in _current.get():
        tally.note(credential, group, sent=sent, throttled=throttled)
