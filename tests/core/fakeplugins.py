"""Plugins for the core's tests, beside :mod:`tests.core.fakesource` (which provides ``fake`` and ``items``).

- source ``pair`` (streams ``alpha`` and ``beta``, no binaries): logs what each read was given
  (partition, checkpoint, window) so tests can check ``--stream``/``--since``/``--full-refresh``;
- source ``metered`` (stream ``metered``): spends a tiny memory budget so a request must wait;
- sinks ``rec_blobs`` / ``rec_records``: log every store and write in call order (invariant 2);
- sink ``items_only``: a record sink that can take only the ``items`` stream;
- sink ``flaky``: a record sink that raises :class:`rcetl.TransientError` on every write.

State is module-level (the engine builds the objects); :func:`reset` clears it between tests.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, BinaryIO

import rcetl

_lock = threading.Lock()
EVENTS: list[tuple[str, Any]] = []  # ("store", blob_id) and ("write", [(stream, key, [blob ids])])
READS: list[dict[str, Any]] = []  # one entry per Stream.read call of the pair source
FLAKY_CALLS: list[int] = []  # sizes of the batches the flaky sink was asked to write


def reset() -> None:
    with _lock:
        EVENTS.clear()
        READS.clear()
        FLAKY_CALLS.clear()


# --- sources ---------------------------------------------------------------------------------------


class PairConfig(rcetl.PluginConfig):
    count: int = 3


class PairStream(rcetl.Stream):
    def __init__(self, name: str, config: PairConfig) -> None:
        self.name = name  # type: ignore[misc] - two streams of one class
        self.config = config

    def read(self, partition: str, checkpoint: Any, window: rcetl.RunWindow) -> Iterator[Any]:
        with _lock:
            READS.append({"stream": self.name, "partition": partition, "checkpoint": checkpoint, "window": window})
        start = int(checkpoint or 0)
        for i in range(start, self.config.count):
            yield rcetl.Record(stream=self.name, key=f"{self.name}-{i}", account="acct-1", data={"i": i},
                               occurred_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
        yield rcetl.Checkpoint(self.config.count)

    def download(self, ref: rcetl.BlobRef, out: BinaryIO) -> None:
        raise rcetl.PermanentError("pair records have no binaries")


class PairSource(rcetl.Source):
    def streams(self) -> list[rcetl.Stream]:
        return [PairStream("alpha", self.config), PairStream("beta", self.config)]  # type: ignore[arg-type]


class MeteredConfig(rcetl.PluginConfig):
    requests: int = 2
    limit: int = 1
    window: float = 0.2


class MeteredStream(rcetl.Stream):
    name = "metered"

    def __init__(self, config: MeteredConfig, ctx: rcetl.RunContext) -> None:
        self.config = config
        self.ctx = ctx

    def read(self, partition: str, checkpoint: Any, window: rcetl.RunWindow) -> Iterator[Any]:
        budget = self.ctx.budgets.budget("metered-credential",
                                         {"heavy": rcetl.GroupLimit(self.config.limit, self.config.window)})
        for i in range(self.config.requests):
            slot = budget.acquire("heavy")  # the second one waits for the window: observers are told
            budget.release(slot)
            yield rcetl.Record(stream="metered", key=i, account="acct-1", data={"i": i})
        yield rcetl.Checkpoint(self.config.requests)

    def download(self, ref: rcetl.BlobRef, out: BinaryIO) -> None:
        raise rcetl.PermanentError("metered records have no binaries")


class MeteredSource(rcetl.Source):
    def streams(self) -> list[rcetl.Stream]:
        return [MeteredStream(self.config, self.ctx)]  # type: ignore[arg-type]


@rcetl.hookimpl
def rcetl_sources() -> list[rcetl.SourceSpec]:
    return [
        rcetl.SourceSpec("pair", PairConfig, lambda c, ctx, conn: PairSource(c, ctx, conn), "fake",
                         ("alpha", "beta"), "two streams without binaries, logging each read"),
        rcetl.SourceSpec("metered", MeteredConfig, lambda c, ctx, conn: MeteredSource(c, ctx, conn), "fake",
                         ("metered",), "spends a tiny request budget"),
    ]


# --- sinks -----------------------------------------------------------------------------------------


class NoOptions(rcetl.PluginConfig):
    pass


class RecordingBlobSink(rcetl.BlobSink):
    config_model = NoOptions
    description = "logs stores"

    def store(self, blob: rcetl.SpooledBlob) -> rcetl.StoredBlob:
        with _lock:
            EVENTS.append(("store", blob.ref.blob_id))
        return rcetl.StoredBlob(self.name, f"mem://{blob.ref.blob_id}", blob.size, blob.sha256)


class RecordingRecordSink(rcetl.RecordSink):
    config_model = NoOptions
    description = "logs writes"

    def write(self, records: Sequence[rcetl.ArchivedRecord]) -> None:
        with _lock:
            EVENTS.append(("write", [(r.stream, r.key, [b.ref.blob_id for b in r.blobs]) for r in records]))


class ItemsOnlySink(RecordingRecordSink):
    description = "takes only items"
    supported_streams = frozenset({"items"})


class FlakySink(rcetl.RecordSink):
    config_model = NoOptions
    description = "always fails transiently"

    def write(self, records: Sequence[rcetl.ArchivedRecord]) -> None:
        with _lock:
            FLAKY_CALLS.append(len(records))
        raise rcetl.TransientError("database restarting (injected)")


@rcetl.hookimpl
def rcetl_sinks() -> list[rcetl.SinkEntry]:
    return [
        rcetl.SinkEntry("rec_blobs", f"{__name__}:RecordingBlobSink"),
        rcetl.SinkEntry("rec_records", f"{__name__}:RecordingRecordSink"),
        rcetl.SinkEntry("items_only", f"{__name__}:ItemsOnlySink"),
        rcetl.SinkEntry("flaky", f"{__name__}:FlakySink"),
    ]
