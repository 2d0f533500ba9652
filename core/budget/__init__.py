"""Shared request budgets: how many requests of each API group may be sent, and when.

A :class:`Budget` belongs to one credential and is shared by every stream, thread, process and
worker that uses the credential. Backends: in-process (:mod:`.memory`) and Redis (:mod:`.redis`),
with the same semantics, so callers never know which one they hold.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict

from typing_extensions import Unpack


@dataclass(frozen=True)
class GroupLimit:
    limit: int  # requests per window
    window: float  # seconds (real seconds: a scaled clock is the caller's business)


@dataclass
class GroupState:
    group: str
    limit: int
    window: float
    used: int  # requests counted in the current window
    penalty_remaining: float  # seconds until a penalty ends (0 if none)
    sent: int  # requests sent since the budget was created
    waited: float  # seconds spent waiting for this group
    throttled: int  # 429s reported with release(retry_after=...)
    waiting: int = 0  # callers in this process waiting for the group now
    waiting_for: float = 0.0  # seconds the head of the line has been blocked (0: nobody blocked)
    wait_reason: str = ""  # why it is blocked: "429 penalty" or "window full", for progress displays


class Reported(TypedDict, total=False):
    """What a response told about its group, as :meth:`Budget.release` takes it (each may be absent
    or None): the X-Rate-Limit-* headers and, on a 429, Retry-After."""

    limit: int | None  # requests per window
    remaining: int | None  # requests left in the server's current window
    window: float | None  # seconds
    retry_after: float | None  # seconds of penalty


class Budget(abc.ABC):
    """A rate budget of one credential, per API group.

    The protocol for a caller: ``slot = acquire(group)`` before sending, then ``release(slot, ...)``
    with what the server reported once the response arrives. ``release`` time-stamps the slot at
    the response's arrival, which is after the server counted it, so the local window can never
    be ahead of the server's sliding window.
    """

    #: Called with (group, wait_seconds) whenever acquire() has to wait; set by the engine for observers.
    on_wait: Callable[[str, float], None] | None = None

    @abc.abstractmethod
    def acquire(self, group: str, *, priority: int = 0) -> object:
        """Block until a request of ``group`` may be sent; return a slot handle for ``release``.
        Lower ``priority`` values go first when several callers wait."""

    @abc.abstractmethod
    def release(self, slot: object, **reported: Unpack[Reported]) -> None:
        """Report the response: limits learned from headers, and ``retry_after`` on a 429 (a penalty
        during which no request of the group is sent)."""

    @abc.abstractmethod
    def snapshot(self) -> dict[str, GroupState]:
        """The state of every group, for progress displays and run summaries."""

    def set_limit(self, group: str, limit: GroupLimit) -> None:
        """Override a group's limit (from the pipeline file)."""
        raise NotImplementedError


class BudgetProvider(abc.ABC):
    """Makes the budget for a credential; one provider per run, chosen by the pipeline file."""

    @abc.abstractmethod
    def budget(self, credential: str, defaults: dict[str, GroupLimit]) -> Budget:
        """The budget of ``credential`` (a stable non-secret id), created with ``defaults`` if new."""
