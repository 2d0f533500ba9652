"""The RingCentral client shared by rcetl's sources: one connection per credential (token, rate
budget, pooled session), plus the paging, download and batch helpers the streams use."""

from __future__ import annotations

from .config import RingCentralConfig, credential_id
from .connection import RingCentralConnection

__all__ = ["RingCentralConfig", "RingCentralConnection", "credential_id"]
