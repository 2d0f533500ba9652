"""The checkpoint and state store: where a pipeline remembers how far it got.

A private SQLite file by default (``sqlite:///path/state.db``); any SQLAlchemy URL (PostgreSQL,
MySQL/MariaDB) when several machines share the work. See docs/state.md.
"""

from __future__ import annotations

from .backoff import Backoff
from .database import StateStoreError, safe_url
from .rows import CheckpointRow, FailedItem, ProofRow, PurgeRow, RunRow
from .schema import MIGRATIONS, Migration, add_column
from .store import StateStore

__all__ = [
    "MIGRATIONS",
    "Backoff",
    "CheckpointRow",
    "FailedItem",
    "Migration",
    "ProofRow",
    "PurgeRow",
    "RunRow",
    "StateStore",
    "StateStoreError",
    "add_column",
    "safe_url",
]
