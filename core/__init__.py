"""rcetl: archive RingCentral communications into pluggable storage, completely and verifiably.

This module is the public API for plugin authors; everything not imported here is private and
may change between minor versions (see docs/plugin-authors.md, "Versioning").
"""

from __future__ import annotations

from .archive import OpenedArchive, open_archive
from .blobs import ObjectInfo, ObjectStoreConfig, ObjectStoreSink, render_key, sanitize_component
from .budget import Budget, BudgetProvider, GroupLimit, GroupState
from .content import ContentMismatch, ContentVerdict, Evidence, check_content, check_stored
from .context import RunContext
from .coordination import Coordinator, process_alive
from .errors import (
    ConfigError,
    ConflictError,
    IntegrityError,
    ItemGone,
    PermanentError,
    PluginError,
    RcetlError,
    TransientError,
)
from .hookspecs import hookimpl
from .interfaces import (
    ArchivedEntry,
    BlobOutput,
    BlobSink,
    Connection,
    ConnectionSpec,
    EmbeddedServerSpec,
    ObserverSpec,
    PluginConfig,
    RecordSink,
    RunWindow,
    Sink,
    SinkEntry,
    Source,
    SourceSpec,
    Stream,
    StreamPlan,
    UsageRow,
)
from .phone import normalize_phone
from .records import (
    ArchivedRecord,
    BlobRef,
    BlobResult,
    Checkpoint,
    Key,
    Record,
    SpooledBlob,
    StoredBlob,
    json_dumps,
    json_loads,
)
from .secrets import redact, register_secret
from .stopping import RunStopped, StopSignal, stop_signal

__version__ = "0.1.0"

__all__ = [
    "OpenedArchive",
    "open_archive",
    "ArchivedEntry",
    "ArchivedRecord",
    "BlobRef",
    "BlobOutput",
    "BlobResult",
    "BlobSink",
    "Budget",
    "BudgetProvider",
    "Checkpoint",
    "ConfigError",
    "ContentMismatch",
    "ContentVerdict",
    "ConflictError",
    "Connection",
    "ConnectionSpec",
    "Coordinator",
    "EmbeddedServerSpec",
    "Evidence",
    "GroupLimit",
    "GroupState",
    "IntegrityError",
    "ItemGone",
    "Key",
    "ObjectInfo",
    "ObjectStoreConfig",
    "ObjectStoreSink",
    "ObserverSpec",
    "PermanentError",
    "PluginConfig",
    "PluginError",
    "RcetlError",
    "Record",
    "RecordSink",
    "RunContext",
    "RunStopped",
    "RunWindow",
    "Sink",
    "SinkEntry",
    "Source",
    "SourceSpec",
    "SpooledBlob",
    "StopSignal",
    "StoredBlob",
    "Stream",
    "StreamPlan",
    "TransientError",
    "UsageRow",
    "hookimpl",
    "json_dumps",
    "json_loads",
    "normalize_phone",
    "redact",
    "register_secret",
    "render_key",
    "sanitize_component",
    "stop_signal",
    "check_content",
    "check_stored",
    "process_alive",
    "__version__",
]
