"""The data that flows from sources through the engine to sinks.

A source stream yields :class:`Record` items (the API's JSON, a natural key) and, between them,
:class:`Checkpoint` markers. A record may reference binaries (:class:`BlobRef`); the engine
downloads each once, stores it in every blob sink, and hands record sinks an
:class:`ArchivedRecord` that carries where each binary went and its checksum.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import Any, BinaryIO, ClassVar

# A natural key: call-log ids are strings, message ids are 64-bit ints. Never a float.
Key = str | int


@dataclass(frozen=True)
class BlobRef:
    """A binary that a record points at, to be fetched by the engine through the source.

    ``blob_id`` is stable for the same bytes (a recording id, an attachment id). ``variables``
    feed the blob sinks' key templates (``id``, ``date``, ``extension``, ``kind``, ``ext``,
    ``account``, ``name``...); values that come from the API are sanitised by the sinks.

    ``accept`` is what the source will take the bytes to be: media types (``application/pdf``) or
    families (``audio/*``). Empty means "what ``content_type`` says". The engine checks every body
    against it, and against ``size`` when the source declared one, before any sink stores it
    (see :mod:`rcetl.content`).
    """

    blob_id: str
    url: str
    kind: str
    content_type: str | None = None
    size: int | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    accept: tuple[str, ...] = ()


@dataclass
class Record:
    """One item of a stream: the API's JSON exactly as received plus its natural key."""

    stream: str
    key: Key
    data: dict[str, Any]
    account: str = ""
    blobs: list[BlobRef] = field(default_factory=list)
    deleted: bool = False
    # When the record (not the run) happened; used by key templates and date partitioning.
    occurred_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe form (for the failed-item queue and task messages); ints stay ints."""
        return {
            "stream": self.stream,
            "key": self.key,
            "data": self.data,
            "account": self.account,
            "deleted": self.deleted,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "blobs": [
                {
                    "blob_id": b.blob_id,
                    "url": b.url,
                    "kind": b.kind,
                    "content_type": b.content_type,
                    "size": b.size,
                    "accept": list(b.accept),
                    "variables": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in b.variables.items()},
                }
                for b in self.blobs
            ],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Record:
        occurred = obj.get("occurred_at")
        return cls(
            stream=obj["stream"],
            key=obj["key"],
            data=dict(obj["data"]),
            account=obj.get("account", ""),
            deleted=bool(obj.get("deleted", False)),
            occurred_at=datetime.fromisoformat(occurred) if occurred else None,
            blobs=[
                BlobRef(
                    blob_id=b["blob_id"],
                    url=b["url"],
                    kind=b["kind"],
                    content_type=b.get("content_type"),
                    size=b.get("size"),
                    variables=dict(b.get("variables") or {}),
                    accept=tuple(b.get("accept") or ()),
                )
                for b in obj.get("blobs", [])
            ],
        )


@dataclass(frozen=True)
class Checkpoint:
    """A stream's position: safe to commit once every record yielded before it is stored.

    ``partition`` separates independent positions of one stream (an extension, a date window).
    ``value`` must be JSON-serialisable.
    """

    value: Any
    partition: str = ""


@dataclass(frozen=True)
class StoredBlob:
    """Where one blob sink put a binary, and proof of what it holds."""

    sink: str
    location: str
    size: int
    sha256: str
    content_type: str | None = None
    skipped: bool = False  # already present with the same checksum: nothing uploaded


@dataclass
class BlobResult:
    """The outcome of archiving one :class:`BlobRef` across every blob sink."""

    ref: BlobRef
    status: str  # "stored" | "gone" (the source no longer has it)
    size: int | None = None
    sha256: str | None = None
    stored: list[StoredBlob] = field(default_factory=list)
    error: str | None = None
    reused: bool = False  # not downloaded: every sink already held it with the recorded checksum
    #: Seconds from the download's start to its first byte (the server's and this process's
    #: latency, not the file's size): what sets the downloads at once when no budget binds.
    first_byte_s: float | None = None


@dataclass
class ArchivedRecord:
    """A record as record sinks receive it: its binaries are already durably stored."""

    record: Record
    blobs: list[BlobResult] = field(default_factory=list)

    @property
    def stream(self) -> str:
        return self.record.stream

    @property
    def key(self) -> Key:
        return self.record.key

    def archive_json(self) -> list[dict[str, Any]]:
        """The archive locations and checksums as plain JSON, for a record sink's column."""
        return [
            {
                "blob_id": b.ref.blob_id,
                "kind": b.ref.kind,
                "status": b.status,
                "size": b.size,
                "sha256": b.sha256,
                "content_type": b.ref.content_type,
                "accept": list(b.ref.accept),
                "locations": {s.sink: s.location for s in b.stored},
            }
            for b in self.blobs
        ]


@dataclass
class SpooledBlob:
    """A downloaded binary on local disk, hashed on the way in; what blob sinks upload."""

    ref: BlobRef
    path: str
    size: int
    sha256: str
    content_type: str | None = None
    record: Record | None = None

    #: The file is the engine's own spool file: written once, never changed afterwards and dropped
    #: once every sink stored it, so a sink on the same file system may publish it by a hard link
    #: (after an fsync) instead of copying its bytes.
    linkable: ClassVar[bool] = False
    #: A ``linkable`` file's descriptor, open until the engine releases it (-1: none): a sink reads
    #: the file through it instead of opening it again by name.
    fd: int = field(default=-1, compare=False, repr=False)
    #: Set by a sink that published this very file under a name of its own (a hard link): the
    #: engine then drops the spool's name and never reuses the file.
    linked: bool = field(default=False, compare=False, repr=False)
    #: Set by a sink that keeps this very file where it is, to give it a name of its own at its
    #: :meth:`BlobSink.sync` (a rename, once the batch's bytes are durable): the engine then closes
    #: its descriptor and leaves the file to that sink, which renames or removes it.
    kept: bool = field(default=False, compare=False, repr=False)

    def open(self) -> BinaryIO:
        return open(self.path, "rb")



# Integer literals orjson would turn into floats (beyond its 64-bit range): such text is parsed by
# the standard library, which keeps every int exact. A long digit run inside a string only costs
# the slower parser, never a wrong value.
_BEYOND_64_BITS = re.compile(rb"-\d{19}|\d{20}")


def _orjson() -> ModuleType:
    import orjson  # here, not at the top: `import rcetl` (and `rcetl --help`) stays cheap

    return orjson


def json_dumps(value: Any) -> str:
    """Compact JSON text, fast: orjson, and the standard library for what orjson refuses.

    orjson refuses ints beyond 64 bits and strings with lone surrogates; both occur in API JSON
    (ids are never rounded through a float, hostile names are kept as sent), so those values go
    through ``json.dumps`` with ASCII escapes, which keeps them exact and valid JSON. One value
    always takes the same path, so the stored text is deterministic.
    """
    try:
        text: str = _orjson().dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"))
    return text


def json_loads(text: str | bytes) -> Any:
    """The inverse of :func:`json_dumps`: ints of any size stay exact ints, never floats."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if _BEYOND_64_BITS.search(raw) is None:
        try:
            return _orjson().loads(raw)
        except ValueError:  # orjson.JSONDecodeError: e.g. an escaped lone surrogate
            pass
    return json.loads(text)
