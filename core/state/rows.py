"""The typed rows the state store hands out; timestamps are timezone-aware UTC datetimes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..records import Key


@dataclass(frozen=True)
class CheckpointRow:
    pipeline: str
    source: str
    stream: str
    partition: str
    value: Any
    updated_at: datetime


@dataclass(frozen=True)
class RunRow:
    run_id: str
    pipeline: str
    status: str  # "running" until finish_run() says otherwise
    info: dict[str, Any]
    summary: dict[str, Any] | None
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class FailedItem:
    """A record that could not be archived, waiting for its next attempt."""

    pipeline: str
    stream: str
    account: str
    key: Key  # exactly as the source gave it: an int stays an int, a string a string
    record: dict[str, Any]
    error: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    next_attempt_at: datetime


@dataclass(frozen=True)
class PurgeRow:
    """One item ``rcetl purge`` acted on (deleted at the source, or would have in a dry run)."""

    pipeline: str
    stream: str
    account: str
    key: Key
    action: str
    at: datetime


@dataclass(frozen=True)
class ProofRow:
    """What ``rcetl verify`` last proved of an item: when, how (``read-back`` or ``deep``), and a
    digest of the binaries the archive held then (a proof of other bytes proves nothing)."""

    stream: str
    account: str
    key: Key
    digest: str
    how: str
    at: datetime
