"""The small typed interfaces between the core and plugins.

A plugin package returns *specs* from its hooks (name, config model, factory). The core builds
plugin objects from validated config and talks to them only through the abstract classes here.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

from pydantic import BaseModel, ConfigDict

from .records import ArchivedRecord, BlobRef, Checkpoint, Key, Record, SpooledBlob, StoredBlob

if TYPE_CHECKING:
    from .context import RunContext


class PluginConfig(BaseModel):
    """Base of every plugin's options. Unknown options are errors (with a did-you-mean)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- sources -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunWindow:
    """What the user asked of this run on the command line."""

    since: datetime | None = None
    until: datetime | None = None
    full_refresh: bool = False


@dataclass
class StreamPlan:
    """A dry-run estimate for one stream: what it would read and what it would cost."""

    stream: str
    description: str
    requests: dict[str, int] = field(default_factory=dict)  # API group -> request count
    items: int | None = None
    warnings: list[str] = field(default_factory=list)


class Stream(abc.ABC):
    """One kind of record a source produces (call log, recordings, messages)."""

    name: ClassVar[str]
    # A child stream derives its records from another stream's records in the same run (the
    # recordings of call-log records) instead of listing the API again. When the parent stream is
    # not part of the run, the engine calls ``read`` instead.
    parent: ClassVar[str | None] = None

    def partitions(self) -> list[str]:
        """Independent slices of work (an extension, an account); each has its own checkpoint."""
        return [""]

    @abc.abstractmethod
    def read(self, partition: str, checkpoint: Any | None, window: RunWindow) -> Iterator[Record | Checkpoint]:
        """Yield records, then a Checkpoint that covers every record yielded before it."""

    def derive(self, parent: Record) -> Iterable[Record]:
        """For child streams: the records this stream makes of one parent record."""
        return ()

    @abc.abstractmethod
    def download(self, ref: BlobRef, out: BinaryIO) -> None:
        """Write the binary's bytes to ``out`` (append-only; resume by continuing to write).

        Raise :class:`rcetl.ItemGone` when the source no longer has it, :class:`rcetl.TransientError`
        for faults worth retrying on a later run, :class:`rcetl.PermanentError` otherwise.
        """

    def plan(self, partition: str, checkpoint: Any | None, window: RunWindow) -> StreamPlan:
        """Estimate the work without any request that changes state (dry run)."""
        return StreamPlan(stream=self.name, description="no estimate available")

    def usage(self, record: Record) -> list[UsageRow]:
        """What a record counts for in usage reconciliation (calls, minutes, messages, faxes per
        extension and day). Optional: the default counts nothing."""
        return []

    def delete(self, record: Record) -> str:
        """Delete the item from the source (``rcetl purge``, only after verification proved it is
        archived everywhere); return what was done, e.g. "deleted" or "purged". Optional."""
        raise NotImplementedError(f"stream {self.name!r} cannot delete items at the source")


@dataclass(frozen=True)
class UsageRow:
    """One record's contribution to the usage report: counts per (day, extension)."""

    day: str  # YYYY-MM-DD
    extension: str
    counts: Mapping[str, float]


class Source(abc.ABC):
    """A configured source plugin: a set of streams on one connection."""

    def __init__(self, config: PluginConfig, ctx: RunContext, connection: Any) -> None:
        self.config = config
        self.ctx = ctx
        self.connection = connection

    @abc.abstractmethod
    def streams(self) -> list[Stream]:
        """The streams this source produces with its options."""

    def close(self) -> None:
        """Release what the source holds; the connection is closed by the core."""


# --- sinks ---------------------------------------------------------------------------------------


class Sink(abc.ABC):
    """Common base of record and blob sinks. ``name`` is the sink's name in the pipeline file."""

    #: Streams this sink can take; ``None`` means any. Routing to any other stream is a config error.
    supported_streams: ClassVar[frozenset[str] | None] = None

    def __init__(self, name: str, config: PluginConfig, ctx: RunContext) -> None:
        self.name = name
        self.config = config
        self.ctx = ctx

    def open(self) -> None:
        """Connect, create tables or buckets as configured. Called once before the first write."""

    def close(self) -> None:
        """Flush and release connections. Called once, also after a failure."""

    def check(self) -> None:
        """Verify credentials and reachability; raise RcetlError with a hint if something is wrong."""


class RecordSink(Sink):
    """Stores records. ``write`` must be idempotent (upsert by natural key) and durable on return."""

    @abc.abstractmethod
    def write(self, records: Sequence[ArchivedRecord]) -> int | None:
        """Upsert a batch (possibly of several streams) in one transaction if the store has them.
        May return how many records were new or changed (None: unknown), so a run can say when
        there was nothing new."""

    def archived(self, stream: str, account: str | None = None) -> Iterator[ArchivedEntry]:
        """Everything this sink holds for a stream (for ``rcetl verify``)."""
        raise NotImplementedError(f"sink {self.name!r} cannot list what it holds")

    def count(self, stream: str, account: str | None = None) -> int:
        """How many records of ``stream`` the sink holds; the default counts :meth:`archived`."""
        return sum(1 for _ in self.archived(stream, account))


@dataclass
class ArchivedEntry:
    """What a record sink reports it holds for one record (used by verification)."""

    stream: str
    key: Key
    account: str
    archive: list[dict[str, Any]]
    deleted: bool = False
    copies: int = 1


class BlobSink(Sink):
    """Stores binaries under templated keys. Subclass :class:`rcetl.blobs.ObjectStoreSink` to get
    key templates, name sanitising, sidecars, skip-if-present and conflict handling for free."""

    @abc.abstractmethod
    def store(self, blob: SpooledBlob) -> StoredBlob:
        """Store one spooled binary idempotently and return where it went and its verified checksum."""

    def stat(self, blob_ref: BlobRef, record: Record | None = None) -> StoredBlob | None:
        """What the sink holds for this binary, or None."""
        raise NotImplementedError

    def open_stored(self, location: str) -> BinaryIO:
        """Read back a stored binary (for ``rcetl verify --rehash``)."""
        raise NotImplementedError

    def stat_location(self, location: str) -> StoredBlob | None:
        """What the sink holds at a location it returned earlier, or None (for verification)."""
        raise NotImplementedError

    def iter_stored(self) -> Iterator[tuple[str, str]]:
        """Every (location, blob_id) the sink holds, to find binaries stored twice. Optional."""
        raise NotImplementedError


# --- specs returned by hooks ---------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    name: str
    config: type[PluginConfig]
    factory: Callable[[PluginConfig, RunContext, Any], Source]
    connection: str  # the connection plugin whose instance the source receives
    streams: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class SinkSpec:
    name: str
    config: type[PluginConfig]
    factory: Callable[[str, PluginConfig, RunContext], Sink]
    kinds: frozenset[str]  # {"records"}, {"blobs"} or both
    description: str = ""
    supported_streams: frozenset[str] | None = None


@dataclass(frozen=True)
class ConnectionSpec:
    name: str
    config: type[PluginConfig]
    factory: Callable[[str, PluginConfig, RunContext], Any]  # returns an object with close()
    description: str = ""


@dataclass(frozen=True)
class ObserverSpec:
    """An observer's name (its key under ``observers:``) and the model of its options."""

    name: str
    config: type[BaseModel]
    description: str = ""


@dataclass(frozen=True)
class EmbeddedServerSpec:
    """A server rcetl can start in-process. ``start(options)`` returns a context manager whose value
    is a mapping of what a client needs (``server``, ``media_server``, ``client_id``, ...)."""

    name: str
    start: Callable[[Mapping[str, Any]], ContextManager[Mapping[str, Any]]]
    description: str = ""
