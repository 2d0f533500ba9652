"""Reproducible fault injection, configured by a compact spec string.

``5xx=0.05,drop=0.05,429=0.02,slow=0.01:2,revoke=@50``:

- ``5xx=P``     answer 500 or 503 with probability P
- ``drop=P``    send the headers and half the body, then close the connection
- ``429=P``     answer 429 and start a penalty for that group (a storm: retries during it also get 429)
- ``slow=P:S``  delay the response S real seconds (default 2)
- ``revoke=@N`` revoke every token at the N-th API request; ``revoke=P`` with probability P

Decisions are a pure function of (seed, request number), so the same run sees the same faults.
Only ``/restapi/v1.0`` requests are counted and faulted; the token endpoint and admin routes never.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .ids import det_rng

KINDS = ("5xx", "drop", "429", "slow", "revoke")


@dataclass(frozen=True)
class Fault:
    kind: str
    status: int = 0
    delay: float = 0.0


@dataclass
class FaultPlan:
    seed: int = 0
    rates: dict[str, float] = field(default_factory=dict)
    slow_seconds: float = 2.0
    revoke_at: set[int] = field(default_factory=set)
    _n: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def parse(cls, spec: str | None, seed: int = 0) -> FaultPlan:
        plan = cls(seed=seed)
        for item in filter(None, (s.strip() for s in (spec or "").split(","))):
            kind, sep, value = item.partition("=")
            if kind not in KINDS or not sep:
                raise ValueError(f"bad fault {item!r} in {spec!r}: expected KIND=VALUE with KIND one of {', '.join(KINDS)}")
            try:
                if value.startswith("@"):
                    if kind != "revoke":
                        raise ValueError("only revoke takes @N")
                    plan.revoke_at.add(int(value[1:]))
                    continue
                rate, _, extra = value.partition(":")
                plan.rates[kind] = float(rate)
                if extra:
                    if kind != "slow":
                        raise ValueError("only slow takes :SECONDS")
                    plan.slow_seconds = float(extra)
            except ValueError as e:
                raise ValueError(f"bad fault {item!r} in {spec!r}: {e}") from None
            if not 0 <= plan.rates.get(kind, 0) <= 1:
                raise ValueError(f"bad fault {item!r}: probability must be within 0..1")
        return plan

    def __bool__(self) -> bool:
        return bool(self.rates or self.revoke_at)

    def next(self) -> list[Fault]:
        """The faults for the next API request (in arrival order)."""
        with self._lock:
            self._n += 1
            n = self._n
        out: list[Fault] = []
        if n in self.revoke_at:
            out.append(Fault("revoke"))
        if not self.rates:
            return out
        rng = det_rng(self.seed, "faults", n)
        for kind in KINDS:
            rate = self.rates.get(kind, 0.0)
            if rate and rng.random() < rate:
                out.append(Fault(kind, status=rng.choice([500, 503]) if kind == "5xx" else 0,
                                 delay=self.slow_seconds if kind == "slow" else 0.0))
        return out
