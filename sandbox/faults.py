"""Reproducible fault injection, configured by a compact spec string.

``5xx=0.05,drop=0.05,429=0.02,slow=0.01:2,revoke=@50``:

- ``5xx=P``     answer 500 or 503 with probability P
- ``drop=P``    send the headers and half the body, then close the connection
- ``429=P``     answer 429 and start a penalty for that group (a storm: retries during it also get 429)
- ``slow=P:S``  delay the response S API seconds (default 2), i.e. S / time_scale real seconds
- ``revoke=@N`` revoke every token at the N-th API request; ``revoke=P`` with probability P
- ``token503=P`` answer 503 on the token endpoint with probability P
- ``html=P``    answer ``200 text/html`` with a login/maintenance page instead of the body
- ``json200=P`` answer ``200 application/json`` with an error body instead of the body
- ``empty=P``   answer ``200`` with the route's Content-Type and an empty body
- ``truncate=P`` send the real Content-Length but only 90% of the body, then close the connection
- ``429long=P`` answer 429 with ``Retry-After: 999999999`` (a hostile or broken proxy; no penalty)

Any rate may instead be ``#N``: the first N requests that match the fault's routes get it
(``html=#3@recording-content``: the first three recording downloads are a login page).

Any rate may end in ``@ROUTES`` to fault only some routes: ``drop=0.2@content`` drops only
binary downloads, ``5xx=0.1@list`` fails only list pages. ROUTES is ``|``-separated; each is a
group (``content``, ``list``, ``sync``, ``get``, ``delete``) or a route name (``message-sync``,
see routes.py), or a part of one.

Decisions are a pure function of (seed, request number), so the same run sees the same faults
(a route filter never shifts the decisions of other requests). Only ``/restapi/v1.0`` requests
are counted and faulted by the API kinds; ``token503`` counts token requests on its own; admin
routes never fail.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .ids import det_rng

# New kinds go at the end: decisions are drawn in this order, so earlier kinds keep theirs.
KINDS = ("5xx", "drop", "429", "slow", "revoke", "html", "json200", "empty", "truncate", "429long")
# Kinds that replace a successful answer (the handler runs, its body is swapped or cut).
BODY_KINDS = ("html", "json200", "empty", "truncate")
TOKEN_KINDS = ("token503",)
# Route groups a fault can be limited to (route names are in routes.py).
ROUTE_GROUPS: dict[str, tuple[str, ...]] = {
    "content": ("recording-content", "attachment-content"),
    "list": ("account-call-log", "extension-call-log", "message-list", "extension-list"),
    "sync": ("account-call-log-sync", "extension-call-log-sync", "call-log-extract-sync", "message-sync"),
    "get": ("account-call-log-record", "extension-call-log-record", "message", "recording", "account-info"),
    "delete": ("extension-call-log-delete", "call-recordings-delete", "conversation-delete", "message-delete"),
}


def route_matches(route: str, patterns: tuple[str, ...]) -> bool:
    return any(route in ROUTE_GROUPS.get(p, ()) or p == route or (p not in ROUTE_GROUPS and p in route) for p in patterns)


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
    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # kind -> route patterns it is limited to
    first: dict[str, int] = field(default_factory=dict)  # kind -> the first N matching requests get it
    _matched: dict[str, int] = field(default_factory=dict)  # kind -> matching requests seen so far
    _n: int = 0
    _token_n: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def parse(cls, spec: str | None, seed: int = 0) -> FaultPlan:
        plan = cls(seed=seed)
        for item in filter(None, (s.strip() for s in (spec or "").split(","))):
            kind, sep, value = item.partition("=")
            if kind not in KINDS + TOKEN_KINDS or not sep:
                raise ValueError(f"bad fault {item!r} in {spec!r}: expected KIND=VALUE with KIND one of "
                                 f"{', '.join(KINDS + TOKEN_KINDS)}")
            try:
                if "@" in value[1:]:
                    value, _, where = value.partition("@")
                    patterns = tuple(p for p in where.split("|") if p)
                    if not patterns or kind in TOKEN_KINDS:
                        raise ValueError("@ROUTES needs route names or groups, and not on token faults")
                    plan.routes[kind] = patterns
                if value.startswith("@"):
                    if kind != "revoke":
                        raise ValueError("only revoke takes @N")
                    plan.revoke_at.add(int(value[1:]))
                    continue
                rate, _, extra = value.partition(":")
                if rate.startswith("#"):
                    if kind in TOKEN_KINDS or kind == "revoke":
                        raise ValueError("#N is for API faults other than revoke (revoke takes @N)")
                    plan.first[kind] = int(rate[1:])
                    if plan.first[kind] < 1:
                        raise ValueError("#N needs N >= 1")
                else:
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
        return bool(self.rates or self.revoke_at or self.first)

    def next(self, route: str | None = None) -> list[Fault]:
        """The faults for the next API request (in arrival order) to ``route`` (a route name)."""
        with self._lock:
            self._n += 1
            n = self._n
        out: list[Fault] = []
        if n in self.revoke_at:
            out.append(Fault("revoke"))
        for kind, limit in self.first.items():
            if kind not in self.routes or (route is not None and route_matches(route, self.routes[kind])):
                with self._lock:
                    seen = self._matched[kind] = self._matched.get(kind, 0) + 1
                if seen <= limit:
                    out.append(self._fault(kind, None))
        if not any(self.rates.get(k) for k in KINDS):
            return out
        rng = det_rng(self.seed, "faults", n)
        for kind in KINDS:
            rate = self.rates.get(kind, 0.0)
            if rate and rng.random() < rate:
                fault = self._fault(kind, rng)
                if kind not in self.routes or (route is not None and route_matches(route, self.routes[kind])):
                    out.append(fault)
        return out

    def _fault(self, kind: str, rng) -> Fault:  # noqa: ANN001 - a random.Random, or None for #N faults
        status = 0
        if kind == "5xx":
            status = rng.choice([500, 503]) if rng is not None else 503
        return Fault(kind, status=status, delay=self.slow_seconds if kind == "slow" else 0.0)

    def token_fault(self) -> bool:
        """Whether the next token request answers 503 (counted apart from API requests)."""
        rate = self.rates.get("token503", 0.0)
        if not rate:
            return False
        with self._lock:
            self._token_n += 1
            n = self._token_n
        return det_rng(self.seed, "token-faults", n).random() < rate
