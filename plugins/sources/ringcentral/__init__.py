"""The RingCentral client shared by rcetl's sources: one connection per credential (token, rate
budget, pooled session), plus the paging, download and batch helpers the streams use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import RingCentralConfig, credential_id

if TYPE_CHECKING:
    from .connection import RingCentralConnection

__all__ = ["RingCentralConfig", "RingCentralConnection", "credential_id"]


def __getattr__(name: str) -> Any:
    # The connection pulls in requests; registering the plugins (rcetl --help) must not.
    if name == "RingCentralConnection":
        from .connection import RingCentralConnection

        return RingCentralConnection
    raise AttributeError(name)
