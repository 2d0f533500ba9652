"""Build and drive one sink outside a pipeline, the way the engine does (used by the contract suite).

A :class:`SinkHarness` finds the sink's spec in the installed plugins (plus any plugin objects a
test registers), validates options with the sink's own config model, builds instances on a real
:class:`rcetl.RunContext`, spools binaries to disk with their SHA-256 like the engine's spool, and
closes every instance it opened.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..context import RunContext
from ..interfaces import BlobSink, PluginConfig, RecordSink, Sink, SinkEntry
from ..records import ArchivedRecord, BlobRef, BlobResult, Record, SpooledBlob, StoredBlob
from ..registry import PluginManager

_managers: dict[tuple[int, ...], PluginManager] = {}


def plugin_manager(extra: Sequence[Any] = ()) -> PluginManager:
    """Every installed plugin (entry points) plus ``extra`` plugin objects; cached per set of extras."""
    key = tuple(id(p) for p in extra)
    pm = _managers.get(key)
    if pm is None:
        pm = PluginManager()
        pm.load_entry_points()
        for plugin in extra:
            pm.register(plugin)
        _managers[key] = pm
    return pm


def make_context(folder: Path, pipeline: str = "contract") -> RunContext:
    """A run context like the engine's: memory budgets, file locks, a spool, relative paths in ``folder``."""
    return RunContext.standalone(folder, pipeline)


@dataclass
class SinkCase:
    """Which sink to test and with which options (as in a pipeline file, without ``plugin:``)."""

    plugin: str
    config: dict[str, Any]
    plugins: Sequence[Any] = ()  # plugin objects to register (a sink that is not installed)
    label: str = ""

    def __str__(self) -> str:
        return self.label or self.plugin


@dataclass
class SinkHarness:
    case: SinkCase
    folder: Path
    opened: list[Sink] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ctx = make_context(self.folder)
        self._names = itertools.count(1)
        self._spooled = itertools.count(1)

    @property
    def pm(self) -> PluginManager:
        return plugin_manager(self.case.plugins)

    @property
    def spec(self) -> SinkEntry:
        specs = self.pm.sinks()
        if self.case.plugin not in specs:
            broken = [f"{i.name} ({i.package}): {i.error}" for i in self.pm.infos if i.error]
            raise LookupError(
                f"no sink plugin named {self.case.plugin!r} is installed (installed: {', '.join(sorted(specs))})"
                + (f"; broken plugins: {'; '.join(broken)}" if broken else "")
                + ". Install your package (pip install -e .) or list the plugin module in the test class's "
                "`plugins`."
            )
        return specs[self.case.plugin]

    @property
    def sink_class(self) -> type[Sink]:
        """The class serving the case's options (an option may pick a subclass: ``Sink.configured``)."""
        return self.spec.load().configured(self.validate())

    @property
    def kinds(self) -> frozenset[str]:
        """What the configured sink stores, from its class."""
        return self.sink_class.kinds()

    def validate(self, options: dict[str, Any] | None = None) -> PluginConfig:
        return self.spec.load().config_model.model_validate(self.case.config if options is None else options)

    def new_sink(self, options: dict[str, Any] | None = None, *, name: str | None = None,
                 open_it: bool = True) -> Sink:
        """A fresh instance (a new run, or a new process after a crash) on the same storage."""
        sink = self.spec.build(name or self.case.plugin.replace("-", "_"),
                               self.case.config if options is None else options, self.ctx)
        self.opened.append(sink)
        if open_it:
            sink.open()
        return sink

    def close_all(self) -> None:
        while self.opened:
            sink = self.opened.pop()
            try:
                sink.close()
            except Exception:  # noqa: BLE001 - a failing close must not hide the test's result
                logging.getLogger("rcetl.testing").exception("closing %s failed", sink.name)

    # --- what the engine hands sinks ------------------------------------------------------------

    def spool(self, ref: BlobRef, data: bytes, record: Record | None = None,
              claimed_sha256: str | None = None) -> SpooledBlob:
        """Bytes on disk with their SHA-256, like the engine's spool (``claimed_sha256`` forges a
        corrupted spool: the file's bytes no longer match what the download hashed)."""
        path = self.ctx.spool_dir / f"blob-{next(self._spooled)}"
        path.write_bytes(data)
        return SpooledBlob(ref=ref, path=str(path), size=len(data),
                           sha256=claimed_sha256 or hashlib.sha256(data).hexdigest(),
                           content_type=ref.content_type, record=record)

    def archived(self, records: Iterable[Record], blobs: dict[str, bytes] | None = None,
                 sink_name: str = "files") -> list[ArchivedRecord]:
        """Records as record sinks get them: every binary already stored (in a pretend blob sink)."""
        out = []
        for rec in records:
            results = []
            for ref in rec.blobs:
                data = (blobs or {}).get(ref.blob_id, b"")
                sha = hashlib.sha256(data).hexdigest()
                results.append(BlobResult(ref=ref, status="stored", size=len(data), sha256=sha,
                                          stored=[StoredBlob(sink_name, f"{sink_name}/{ref.blob_id}", len(data), sha,
                                                             ref.content_type)]))
            out.append(ArchivedRecord(rec, results))
        return out

    def record_sink(self, options: dict[str, Any] | None = None) -> RecordSink:
        sink = self.new_sink(options)
        assert isinstance(sink, RecordSink), f"{self.case.plugin}'s factory returned {type(sink).__name__}, not a RecordSink"
        return sink

    def blob_sink(self, options: dict[str, Any] | None = None) -> BlobSink:
        sink = self.new_sink(options)
        assert isinstance(sink, BlobSink), f"{self.case.plugin}'s factory returned {type(sink).__name__}, not a BlobSink"
        return sink
