"""The small typed interfaces between the core and plugins.

A plugin package returns *specs* from its hooks (name, config model, factory). The core builds
plugin objects from validated config and talks to them only through the abstract classes here.
"""

from __future__ import annotations

import abc
import importlib
import importlib.util
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict

from .errors import PluginError
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


@runtime_checkable
class BlobOutput(Protocol):
    """What :meth:`Stream.download` writes a binary into: the engine's spool file, which hashes the
    bytes as they pass and keeps what the server said about them for the content check."""

    #: The media type the server sent (``Content-Type``), when the listing did not say.
    content_type: str | None
    #: The body length the server announced (``Content-Length``); the bytes are held to it.
    content_length: int | None

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        """Append bytes; returns how many were taken (all of them)."""
        ...

    def tell(self) -> int:
        """How many bytes were written so far (a resumed download continues from there)."""
        ...


@runtime_checkable
class Connection(Protocol):
    """What a connection plugin's factory returns: one credential's client, token and rate budget,
    shared by the sources that name it. The core closes it once, after the run."""

    def close(self) -> None:
        """Release the client (the core calls it once, also after a failure)."""
        ...


#: The connection type a source works with (``rcetl.Source[MyConnection]``).
ConnectionT = TypeVar("ConnectionT", bound=Connection)


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
    def download(self, ref: BlobRef, out: BlobOutput) -> None:
        """Write the binary's bytes to ``out`` (append-only; resume by continuing to write); set
        ``out.content_type`` / ``out.content_length`` from the response when the server says them.

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


class Source(abc.ABC, Generic[ConnectionT]):
    """A configured source plugin: a set of streams on one connection."""

    def __init__(self, config: PluginConfig, ctx: RunContext, connection: ConnectionT) -> None:
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
    """Common base of record and blob sinks. ``name`` is the sink's name in the pipeline file.

    A sink plugin is one class: what it is (its options, its description, the streams it takes,
    its capabilities) is declared on the class, and what it stores follows from its base classes
    (:class:`RecordSink`, :class:`BlobSink` or both). It is registered by dotted path with a
    :class:`SinkEntry`, so the class's module is imported only when a pipeline uses it.
    """

    #: The model of the sink's options (the keys beside ``plugin:`` in a pipeline file).
    config_model: ClassVar[type[PluginConfig]] = PluginConfig
    #: One line for ``rcetl plugins list``.
    description: ClassVar[str] = ""
    #: Streams this sink can take; ``None`` means any. Routing to any other stream is a config error.
    supported_streams: ClassVar[frozenset[str] | None] = None

    def __init__(self, name: str, config: PluginConfig, ctx: RunContext) -> None:
        self.name = name
        self.config = config
        self.ctx = ctx

    @classmethod
    def configured(cls, config: PluginConfig) -> type[Sink]:
        """The class that serves ``config``: itself, unless an option turns the sink into a
        subclass that stores more (MongoDB with ``gridfs: true`` is a blob sink too)."""
        return cls

    @classmethod
    def kinds(cls) -> frozenset[str]:
        """What the class stores, from its base classes: ``records``, ``blobs`` or both."""
        return frozenset(
            kind for kind, base in (("records", RecordSink), ("blobs", BlobSink)) if issubclass(cls, base)
        )

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

    def prepare(self, records: Sequence[ArchivedRecord]) -> Any:
        """Do the CPU work of writing ``records`` now (rows, encoded JSON); what it returns is
        handed to :meth:`write_prepared`, which does the store's part. The engine prepares a batch
        while the batch before it is still being written (on another thread: prepare must not use
        the store's connection), so the mapping of one batch overlaps the store's work on the one
        before. The default prepares nothing: :meth:`write_prepared` then calls :meth:`write`."""
        return records

    def write_prepared(self, prepared: Any) -> int | None:
        """Write what :meth:`prepare` returned, durable on return, answering as :meth:`write`. The
        engine calls it again with the same ``prepared`` after a :class:`TransientError`."""
        return self.write(prepared)

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
    """Stores binaries under templated keys. Subclass :class:`rcetl.ObjectStoreSink` to get
    key templates, name sanitising, sidecars, skip-if-present and conflict handling for free."""

    #: Reading every stored binary back is cheap (a local disk): ``rcetl verify`` then re-hashes
    #: them by default instead of trusting the store's reported checksums.
    rehash_is_cheap: ClassVar[bool] = False

    @abc.abstractmethod
    def store(self, blob: SpooledBlob) -> StoredBlob:
        """Store one spooled binary idempotently and return where it went and its verified checksum."""

    def sync(self) -> None:
        """Make durable everything :meth:`store` returned so far (default: nothing to do, for a store
        whose writes are durable when they return). The engine calls it once per batch, after the
        batch's binaries are stored and before the blob ledger or any record names them, or a
        checkpoint moves (invariants 1 and 2): a sink may defer per-file durability work to it."""

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
    factory: Callable[[PluginConfig, RunContext, Any], Source[Any]]
    connection: str  # the connection plugin whose instance the source receives
    streams: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class SinkEntry:
    """A sink plugin as its package registers it (``rcetl_sinks``): a name and where its class is.

    The class is imported only when a pipeline names the sink, so a pipeline is validated without
    importing the sinks it does not use. ``extra`` is what to install when the sink's dependencies
    are missing (``rcetl[s3]``); ``requires`` are the modules it needs from it, checked when the
    sink is loaded so that ``rcetl validate`` reports a missing extra instead of ``rcetl run``.

    A sink whose class module imports a heavy library at the top (the SQL sinks import SQLAlchemy)
    may also name its options model (``config="package.module:Model"``, a module that stays cheap)
    and what it stores (``kinds``): ``rcetl validate`` then checks the options and the routing
    without importing the class. Both must agree with the class, which :meth:`load` checks; such a
    sink takes any stream and its options never pick another class (:meth:`Sink.configured`).
    """

    name: str
    target: str | type[Sink]  # "package.module:Class", or the class itself (tests, embedding)
    extra: str | None = None
    requires: tuple[str, ...] = ()
    config: str | None = None  # "package.module:Model": the class's ``config_model``, importable alone
    kinds: frozenset[str] | None = None  # what the class stores (``Sink.kinds()``), with ``config``

    def __post_init__(self) -> None:
        if (self.config is None) != (self.kinds is None):
            raise PluginError(f"sink plugin {self.name!r}: declare both config= and kinds=, or neither",
                              hint="validation skips the class only when it knows its options and kinds")
        if self.kinds is not None and not isinstance(self.kinds, frozenset):  # a set or tuple given
            object.__setattr__(self, "kinds", frozenset(self.kinds))

    @property
    def declared(self) -> bool:
        """Whether validation can do without the class (its options model and kinds are declared)."""
        return self.config is not None

    def check_requires(self) -> None:
        """Raise :class:`rcetl.PluginError` naming what to install if a required module is missing."""
        missing = [m for m in self.requires if not _importable(m)]
        if missing:
            raise self._missing(", ".join(missing))

    def load_config(self) -> type[PluginConfig]:
        """The sink's options model: the declared one (its class not imported), else the class's."""
        if self.config is None:
            return self.load().config_model
        self.check_requires()
        model = self._import(self.config)
        if not (isinstance(model, type) and issubclass(model, PluginConfig)):
            raise PluginError(f"sink plugin {self.name!r}: {self.config} is not an rcetl.PluginConfig subclass",
                              hint="declare the options model as config='package.module:ClassName'")
        return model

    def load(self) -> type[Sink]:
        """The sink's class; raises :class:`rcetl.PluginError` naming what to install."""
        if isinstance(self.target, str):
            self.check_requires()
            cls = self._import(self.target)
            if not (isinstance(cls, type) and issubclass(cls, Sink)):
                raise PluginError(f"sink plugin {self.name!r}: {self.target} is not an rcetl.Sink subclass",
                                  hint="register the sink's class as 'package.module:ClassName'")
        else:
            cls = self.target
        if self.config is not None:
            self._check_declarations(cls)
        return cls

    def build(self, name: str, options: Mapping[str, Any], ctx: RunContext) -> Sink:
        """A sink of this plugin named ``name``, from its options as a pipeline file gives them (checked
        by its options model, which may pick a subclass), not opened yet: for tests, benchmarks and
        embedding code that have no pipeline file. Raises pydantic's ``ValidationError`` on bad options."""
        cls = self.load()
        config = cls.config_model.model_validate(dict(options))
        return cls.configured(config)(name, config, ctx)

    def _check_declarations(self, cls: type[Sink]) -> None:
        wrong = []
        if cls.config_model is not self.load_config():
            model = cls.config_model
            wrong.append(f"config={self.config!r} but the class's config_model is {model.__module__}:{model.__qualname__}")
        if cls.kinds() != self.kinds:
            wrong.append(f"kinds={sorted(self.kinds or ())} but the class stores {sorted(cls.kinds())}")
        if cls.supported_streams is not None:
            wrong.append("the class restricts its streams (supported_streams)")
        if any("configured" in vars(k) for k in cls.__mro__[:cls.__mro__.index(Sink)]):
            wrong.append("the class picks a subclass by option (configured())")
        if wrong:
            raise PluginError(f"sink plugin {self.name!r}: its registration disagrees with its class: "
                              + "; ".join(wrong),
                              hint="fix the SinkEntry's config=/kinds=, or drop them so the class is read")

    def _import(self, target: str) -> object:
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            gone = exc.name or ""
            if not gone or gone.split(".")[0] == module_name.split(".")[0]:  # its own package is broken
                raise PluginError(f"sink plugin {self.name!r}: cannot import {module_name}: {exc}",
                                  hint="the package registering it is broken; reinstall or report it") from None
            raise self._missing(gone) from None
        return getattr(module, attr, None)

    def _missing(self, modules: str) -> PluginError:
        hint = f"pip install '{self.extra}'" if self.extra else f"install the package that provides {modules}"
        return PluginError(f"sink plugin {self.name!r} needs {modules}, which is not installed", hint=hint)


def _importable(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (a parent package is imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing, or blocked by an import hook
        return False


@dataclass(frozen=True)
class ConnectionSpec:
    name: str
    config: type[PluginConfig]
    factory: Callable[[str, PluginConfig, RunContext], Connection]
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
