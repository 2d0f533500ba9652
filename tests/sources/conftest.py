"""Fixtures for the RingCentral sources: a sandbox, a run context and helpers that drive streams
directly (no engine), so each test sees exactly what a stream yields and what it downloads."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

import rcetl
from rcetl.budget.memory import MemoryBudgetProvider
from rcetl.coordination import FileCoordinator
from rcetl.plugins.sources import call_log, message_store, recording
from rcetl.plugins.sources.ringcentral import plugin as connection_plugin


def make_ctx(tmp: Path, budgets: rcetl.BudgetProvider | None = None, state: Path | None = None) -> rcetl.RunContext:
    tmp.mkdir(parents=True, exist_ok=True)
    return rcetl.RunContext(
        pipeline="t",
        budgets=budgets or MemoryBudgetProvider(),
        coordinator=FileCoordinator(state or tmp / "state"),
        spool_dir=tmp,
        base_dir=tmp,
        embedded_servers={},
    )


def connection_options(sb: Any, **overrides: Any) -> dict[str, Any]:
    return {
        "server": sb.server,
        "media_server": sb.media_server,
        "client_id": sb.client_id,
        "client_secret": sb.client_secret,
        "jwt": sb.jwt,
        "time_scale": sb.time_scale,
        "timeout": 30,
        **overrides,
    }


def connect(sb: Any, ctx: rcetl.RunContext, **overrides: Any):
    (spec,) = connection_plugin.rcetl_connections()
    return spec.factory("rc", spec.config(**connection_options(sb, **overrides)), ctx)


def stream_of(module: Any, ctx: rcetl.RunContext, conn: Any, **options: Any) -> rcetl.Stream:
    (spec,) = module.rcetl_sources()
    source = spec.factory(spec.config(**options), ctx, conn)
    (stream,) = source.streams()
    return stream


SOURCES = {"call-log": call_log, "recording": recording, "message-store": message_store}


def drain(stream: rcetl.Stream, window: rcetl.RunWindow | None = None, checkpoints: dict | None = None):
    """Every record of every partition, and the last checkpoint of each partition."""
    window = window or rcetl.RunWindow()
    checkpoints = dict(checkpoints or {})
    records: list[rcetl.Record] = []
    for partition in stream.partitions():
        for item in stream.read(partition, checkpoints.get(partition), window):
            if isinstance(item, rcetl.Checkpoint):
                checkpoints[item.partition] = item.value
            else:
                records.append(item)
    return records, checkpoints


class HashingWriter:
    """An append-only file that hashes as it goes, like the engine's spool writer."""

    def __init__(self, path: Path) -> None:
        self._fh = open(path, "ab")
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._fh.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)

    def close(self) -> None:
        self._fh.close()


def download_all(stream: rcetl.Stream, records: Iterable[rcetl.Record], tmp: Path) -> dict[str, Any]:
    """blob_id -> (size, sha256) for every blob, or "gone" for ItemGone."""
    out: dict[str, Any] = {}
    tmp.mkdir(parents=True, exist_ok=True)
    for rec in records:
        for ref in rec.blobs:
            writer = HashingWriter(tmp / f"{len(out)}.bin")
            try:
                stream.download(ref, writer)  # type: ignore[arg-type]
                out[ref.blob_id] = (writer.size, writer.sha.hexdigest())
            except rcetl.ItemGone:
                out[ref.blob_id] = "gone"
            finally:
                writer.close()
    return out


@pytest.fixture
def sandbox_factory():
    from rcetl.sandbox import Sandbox

    started: list[Any] = []

    def make(**options: Any):
        options.setdefault("seed", 1)
        options.setdefault("size", "tiny")
        options.setdefault("time_scale", 60.0)
        sb = Sandbox(**options)
        sb.__enter__()
        started.append(sb)
        return sb

    yield make
    for sb in reversed(started):
        sb.__exit__(None, None, None)


@pytest.fixture
def connected(sandbox_factory, tmp_path: Path):
    """``sb, ctx, conn = connected(**sandbox_options, connection={...overrides})``: a fresh sandbox, a
    run context in ``tmp_path`` and a RingCentral connection to it, closed after the test."""
    opened: list[Any] = []

    def make(connection: dict[str, Any] | None = None, **sandbox_options: Any) -> tuple[Any, rcetl.RunContext, Any]:
        sb = sandbox_factory(**sandbox_options)
        ctx = make_ctx(tmp_path)
        opened.append(connect(sb, ctx, **(connection or {})))
        return sb, ctx, opened[-1]

    yield make
    for conn in reversed(opened):
        conn.close()
