"""A source plugin for the core's own tests: records with binaries, with faults on demand.

It needs no network: its "API" is a dict of items in memory and its binaries are deterministic
bytes. Tests register it with ``pm.register(fakesource)`` and use ``items`` streams in pipelines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, BinaryIO

import rcetl

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)

# Test knobs, set by tests (module-level so they reach instances built by the engine).
FAIL_DOWNLOADS: set[str] = set()  # blob ids whose download raises TransientError
GONE: set[str] = set()  # blob ids the source no longer has
CALLS: list[str] = []  # every download, in order


def blob_bytes(item_id: int, size: int) -> bytes:
    seed = hashlib.sha256(str(item_id).encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


class FakeConfig(rcetl.PluginConfig):
    count: int = 10
    page: int = 4  # records per checkpoint
    blob_size: int = 1000
    big_ids: bool = True  # ids above 2**53 to prove exactness


class FakeConnectionConfig(rcetl.PluginConfig):
    token: str = "none"


class ItemsStream(rcetl.Stream):
    name = "items"

    def __init__(self, config: FakeConfig) -> None:
        self.config = config

    def _id(self, i: int) -> int:
        return (2**53 + 1 + i) if self.config.big_ids else i

    def read(self, partition: str, checkpoint: Any, window: rcetl.RunWindow) -> Iterator[Any]:
        start = int(checkpoint or 0)
        for i in range(start, self.config.count):
            item_id = self._id(i)
            yield rcetl.Record(
                stream="items", key=item_id, account="acct-1",
                data={"id": item_id, "n": i, "name": f"item {i}", "when": (BASE + timedelta(hours=i)).isoformat()},
                occurred_at=BASE + timedelta(hours=i),
                blobs=[rcetl.BlobRef(blob_id=f"blob-{item_id}", url=f"fake://{item_id}", kind="file",
                                     content_type="application/octet-stream", size=self.config.blob_size,
                                     variables={"id": item_id, "date": BASE + timedelta(hours=i), "kind": "file",
                                                "ext": "bin", "extension": "101", "account": "acct-1"})],
            )
            if (i + 1) % self.config.page == 0 or i + 1 == self.config.count:
                yield rcetl.Checkpoint(i + 1)

    def download(self, ref: rcetl.BlobRef, out: BinaryIO) -> None:
        CALLS.append(ref.blob_id)
        if ref.blob_id in GONE:
            raise rcetl.ItemGone(f"{ref.blob_id} is gone")
        if ref.blob_id in FAIL_DOWNLOADS:
            raise rcetl.TransientError(f"download of {ref.blob_id} failed (injected)")
        out.write(blob_bytes(int(ref.blob_id.split("-")[1]), self.config.blob_size))

    def plan(self, partition: str, checkpoint: Any, window: rcetl.RunWindow) -> rcetl.StreamPlan:
        left = self.config.count - int(checkpoint or 0)
        return rcetl.StreamPlan("items", f"{left} items from #{int(checkpoint or 0)}", {"light": left}, left)


class FakeSource(rcetl.Source):
    def streams(self) -> list[rcetl.Stream]:
        return [ItemsStream(self.config)]  # type: ignore[arg-type]


class FakeConnection:
    def __init__(self, name: str, config: FakeConnectionConfig, ctx: rcetl.RunContext) -> None:
        self.name = name
        self.closed = False
        # A careless plugin: it logs its credential. The CLI's log output must mask it (invariant 6).
        ctx.logger.info("fake connection %s opened with token %s", name, config.token)

    def close(self) -> None:
        self.closed = True


@rcetl.hookimpl
def rcetl_connections() -> list[rcetl.ConnectionSpec]:
    return [rcetl.ConnectionSpec("fake", FakeConnectionConfig, FakeConnection, "in-memory test API")]


@rcetl.hookimpl
def rcetl_sources() -> list[rcetl.SourceSpec]:
    return [rcetl.SourceSpec("items", FakeConfig, FakeSource, "fake",
                             ("items",), "test items with binaries")]
