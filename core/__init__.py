"""rcetl: archive RingCentral communications into pluggable storage, completely and verifiably.

This module is the public API for plugin authors; everything not imported here is private and
may change between minor versions (see docs/plugin-authors.md, "Versioning").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .archive import OpenedArchive, open_archive
    from .blobs import ObjectInfo, ObjectStoreConfig, ObjectStoreSink, render_key, sanitize_component
    from .budget import Budget, BudgetProvider, GroupLimit, GroupState
    from .content import ContentMismatch, ContentVerdict, Evidence, check_content, check_stored
    from .context import RunContext
    from .coordination import Coordinator, process_alive
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


# Everything but the errors is imported when first used (PEP 562), not by `import rcetl`: every
# plugin module starts with `import rcetl`, and a run or `rcetl validate` needs only part of the API
# (a SQLite archive never loads the object-store base, the content checks or the archive reader).
_LAZY = {
    "archive": ("OpenedArchive", "open_archive"),
    "blobs": ("ObjectInfo", "ObjectStoreConfig", "ObjectStoreSink", "render_key", "sanitize_component"),
    "budget": ("Budget", "BudgetProvider", "GroupLimit", "GroupState"),
    "content": ("ContentMismatch", "ContentVerdict", "Evidence", "check_content", "check_stored"),
    "context": ("RunContext",),
    "coordination": ("Coordinator", "process_alive"),
    "hookspecs": ("hookimpl",),
    "interfaces": ("ArchivedEntry", "BlobOutput", "BlobSink", "Connection", "ConnectionSpec", "EmbeddedServerSpec",
                   "ObserverSpec", "PluginConfig", "RecordSink", "RunWindow", "Sink", "SinkEntry", "Source",
                   "SourceSpec", "Stream", "StreamPlan", "UsageRow"),
    "phone": ("normalize_phone",),
    "records": ("ArchivedRecord", "BlobRef", "BlobResult", "Checkpoint", "Key", "Record", "SpooledBlob",
                "StoredBlob", "json_dumps", "json_loads"),
    "secrets": ("redact", "register_secret"),
    "stopping": ("RunStopped", "StopSignal", "stop_signal"),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}

if not TYPE_CHECKING:  # (hidden from mypy, which would otherwise accept any misspelt rcetl.Name)

    def __getattr__(name: str) -> Any:
        import importlib

        if name in _LAZY:  # a module `import rcetl` used to load (``rcetl.records.Record``)
            return importlib.import_module(f".{name}", __name__)
        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value  # once: later uses are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
