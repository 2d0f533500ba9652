"""Stand-ins for what an ``ApiClient`` gets from the engine, for tests that talk to a local HTTP
server: a budget that never waits (the tests measure the client, not pacing) and a fixed token."""

from __future__ import annotations

from typing import Any


class FreeBudget:
    def acquire(self, group: str, priority: int = 0) -> object:
        return object()

    def release(self, slot: object, **reported: Any) -> None:
        pass


class FixedTokens:
    def access_token(self) -> str:
        return "tok-1"
