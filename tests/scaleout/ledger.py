"""A test source whose every account has its own records and bytes, and spends a shared budget.

The core's fake source gives every connection the same records; scale-out tests need to prove
that *each* account is archived completely, that two workers on one account stay within its
budget, and that a killed worker's task is finished elsewhere. So here: connection ``ledger``
(one per account, ``account:`` names it), source ``ledger`` with stream ``entries`` split into
``partitions``; each record and binary is derived from (account, partition, n); every download
takes a ``heavy`` slot of the account's budget, and when ``send_log`` names a Redis, each slot's
Redis time and the worker's pid are appended to ``rcetl-test:sends:<account>``.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, BinaryIO

import rcetl
from rcetl.budget import GroupLimit

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
SEND_LOG_KEY = "rcetl-test:sends:{account}"


def blob_bytes(account: str, partition: str, n: int, size: int) -> bytes:
    seed = hashlib.sha256(f"{account}/{partition}/{n}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def item_id(account: str, partition: str, n: int) -> str:
    return f"{account}-{partition}-{n:05d}"


class LedgerConnectionConfig(rcetl.PluginConfig):
    account: str
    heavy_limit: int = 1000  # downloads per window
    window: float = 1.0  # seconds
    send_log: str | None = None  # redis URL: record every send


class LedgerConnection:
    def __init__(self, name: str, config: LedgerConnectionConfig, ctx: rcetl.RunContext) -> None:
        self.name, self.config = name, config
        self.account = config.account
        self.credential = f"ledger:{config.account}"
        self.budget = ctx.budgets.budget(self.credential,
                                         {"heavy": GroupLimit(config.heavy_limit, config.window)})
        self._redis = None
        if config.send_log:
            import redis

            self._redis = redis.Redis.from_url(config.send_log)

    def describe(self) -> str:
        return f"account {self.account}"

    def send(self) -> None:
        """One request: a budget slot, logged with the Redis clock the budget itself uses."""
        slot = self.budget.acquire("heavy")
        try:
            if self._redis is not None:
                sec, usec = self._redis.time()
                self._redis.rpush(SEND_LOG_KEY.format(account=self.account), f"{sec + usec / 1e6:.6f} {os.getpid()}")
        finally:
            self.budget.release(slot)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()


class LedgerConfig(rcetl.PluginConfig):
    count: int = 20  # records per partition
    partitions: int = 1
    page: int = 5  # records per checkpoint
    blob_size: int = 2000
    delay: float = 0.0  # seconds per record (makes a task last long enough to kill its worker)


class EntriesStream(rcetl.Stream):
    name = "entries"

    def __init__(self, config: LedgerConfig, connection: LedgerConnection) -> None:
        self.config, self.connection = config, connection

    def partitions(self) -> list[str]:
        return [f"p{i}" for i in range(self.config.partitions)]

    def read(self, partition: str, checkpoint: Any, window: rcetl.RunWindow) -> Iterator[Any]:
        account = self.connection.account
        for n in range(int(checkpoint or 0), self.config.count):
            if self.config.delay:
                time.sleep(self.config.delay)
            rid = item_id(account, partition, n)
            when = BASE + timedelta(minutes=n)
            yield rcetl.Record(
                stream="entries", key=rid, account=account, data={"id": rid, "n": n, "partition": partition},
                occurred_at=when,
                blobs=[rcetl.BlobRef(blob_id=rid, url=f"ledger://{rid}", kind="file",
                                     content_type="application/octet-stream", size=self.config.blob_size,
                                     variables={"id": rid, "date": when, "kind": "file", "ext": "bin",
                                                "extension": partition, "account": account})])
            if (n + 1) % self.config.page == 0 or n + 1 == self.config.count:
                yield rcetl.Checkpoint(n + 1)

    def download(self, ref: rcetl.BlobRef, out: BinaryIO) -> None:
        self.connection.send()
        account, partition, n = ref.blob_id.rsplit("-", 2)
        out.write(blob_bytes(account, partition, int(n), self.config.blob_size))

    def plan(self, partition: str, checkpoint: Any, window: rcetl.RunWindow) -> rcetl.StreamPlan:
        left = self.config.count - int(checkpoint or 0)
        return rcetl.StreamPlan("entries", f"{left} entries", {"heavy": left}, left)


class LedgerSource(rcetl.Source):
    def streams(self) -> list[rcetl.Stream]:
        return [EntriesStream(self.config, self.connection)]  # type: ignore[arg-type]


@rcetl.hookimpl
def rcetl_connections() -> list[rcetl.ConnectionSpec]:
    return [rcetl.ConnectionSpec("ledger", LedgerConnectionConfig, LedgerConnection, "per-account test API")]


@rcetl.hookimpl
def rcetl_sources() -> list[rcetl.SourceSpec]:
    return [rcetl.SourceSpec("ledger", LedgerConfig, LedgerSource, "ledger",
                             ("entries",), "per-account test entries with binaries")]
