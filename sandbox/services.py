"""What request handlers may use of the running sandbox: a small protocol, so handlers depend on
services rather than on the app or the server object (and no module imports back up the chain)."""

from __future__ import annotations

from typing import Any, Protocol

from .auth import Credentials, TokenStore
from .clock import ScaledClock
from .counters import Counters
from .model import AccountData
from .ratelimit import RateLimiter
from .render import Urls


class Control(Protocol):
    """What the admin routes ask of the sandbox that runs them (``Sandbox`` provides it)."""

    def info(self) -> dict[str, Any]: ...

    def ground_truth(self) -> dict[str, Any]: ...

    def add_calls(self, n: int, account: int = 0, recordings: int | None = None) -> list[dict[str, Any]]: ...

    def add_messages(self, n: int, account: int = 0) -> list[dict[str, Any]]: ...


class Services(Protocol):
    """The state a handler reads and the services it calls (``SandboxApp`` provides it)."""

    accounts: list[AccountData]
    credentials: Credentials
    clock: ScaledClock
    limiter: RateLimiter
    counters: Counters
    tokens: TokenStore
    urls: Urls
    control: Control
