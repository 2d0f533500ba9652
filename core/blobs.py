"""The object-store base every blob sink shares: key templates, name sanitising, JSON sidecars,
skip-if-present, conflict policy and checksum verification, implemented once.

A concrete sink (local folder, S3, GCS, Dropbox) subclasses :class:`ObjectStoreSink` and supplies
a handful of storage primitives (``_head``, ``_upload``, ``_put_small``, ``_open``, ``_delete``).
:meth:`ObjectStoreSink.store` is the template method that composes them, so every sink gives the
same guarantees (invariants 1, 4 and 5 of the design notes): a key always names the same bytes,
a re-run uploads nothing, and different bytes are never silently written over.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import mimetypes
import posixpath
import re
import socket
import string
import threading
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, BinaryIO, ClassVar, Literal

from pydantic import field_validator

from .errors import ConfigError, ConflictError, IntegrityError, PermanentError, RcetlError, TransientError
from .interfaces import BlobSink, PluginConfig
from .records import BlobRef, Record, SpooledBlob, StoredBlob

DEFAULT_KEY_TEMPLATE = "{date:%Y/%m/%d}/{extension}/{kind}/{id}.{ext}"
MISSING_PLACEHOLDER = "_"
# Bytes, not characters: S3 and GCS limit keys to 1024 bytes, most file systems names to 255.
MAX_COMPONENT_BYTES = 150
MAX_VERSIONS = 1000
READ_CHUNK = 1 << 20
#: The folder (under the sink's prefix) of the batch manifests ``sidecar: batch`` writes.
MANIFESTS = "_manifests"

# Characters that separate paths or are reserved on some file system the archive may be copied to.
_RESERVED = re.compile(r'[/\\:*?"<>|]')
_WHITESPACE = re.compile(r"\s+")
# Names Windows will not open, whatever the extension; prefixed so an archive copies anywhere.
_WINDOWS_DEVICES = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(10)),
    *(f"LPT{i}" for i in range(10)),
}
# What is safe as it is (ids, dates, extension numbers): no step of sanitize_component changes it.
_PLAIN = re.compile(r"[A-Za-z0-9_-](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?")
# Control, format (bidi overrides can disguise an extension), surrogate, private and line separators.
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def sanitize_component(value: object, max_bytes: int = MAX_COMPONENT_BYTES) -> str:
    """Make one path component safe from any value (an API file name, a caller name, an id).

    No separators, no ``.``/``..``, no control or bidi characters, at most ``max_bytes`` of UTF-8.
    Unicode letters are kept (NFC-normalised). A name cut for length keeps its extension and gains
    a short hash of the original, so two long names that share a prefix stay distinct.
    """
    if type(value) is str and len(value) <= max_bytes and _PLAIN.fullmatch(value) \
            and value.split(".", 1)[0].upper() not in _WINDOWS_DEVICES:
        return value  # ASCII letters, digits, '-', '_' and inner dots: every step below keeps it as is
    text = unicodedata.normalize("NFC", str(value))
    text = "".join("_" if unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in text)
    text = _RESERVED.sub("_", text)
    text = _WHITESPACE.sub(" ", text).strip(" .")
    if not text:
        return MISSING_PLACEHOLDER
    if text.split(".", 1)[0].upper() in _WINDOWS_DEVICES:
        text = "_" + text
    if len(text.encode()) > max_bytes:
        text = _shorten(text, str(value), max_bytes)
    return text


def _shorten(text: str, original: str, max_bytes: int) -> str:
    stem, dot, ext = text.rpartition(".")
    if not dot or len(ext.encode()) > 16:
        stem, ext = text, ""
    tail = (
        "~"
        + hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        + (f".{ext}" if ext else "")
    )
    budget = max(max_bytes - len(tail.encode()), 1)
    # Cut at a character boundary: drop the bytes of a split multi-byte character.
    cut = stem.encode()[:budget].decode("utf-8", "ignore").rstrip(" .")
    return (cut or MISSING_PLACEHOLDER) + tail


def parse_date(value: object) -> datetime | None:
    """A datetime from a datetime or an ISO-8601 string (what survives a JSON round trip)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return None
    return None


class _KeyFormatter(string.Formatter):
    """``str.format`` with every value sanitised and missing variables rendered as ``_``."""

    def get_field(self, field_name: str, args: Any, kwargs: Mapping[str, Any]) -> Any:
        value = kwargs.get(field_name)
        if field_name == "date" or field_name.endswith(("_date", "_at")):
            value = parse_date(value) or value  # an ISO string after a JSON round trip
        return value, field_name

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None or value == "":
            return MISSING_PLACEHOLDER
        date = (
            parse_date(value) if (format_spec and "%" in format_spec) or isinstance(value, datetime) else None
        )
        if date is not None:
            # The format spec comes from the pipeline file and may hold '/' on purpose (%Y/%m/%d);
            # each piece it makes is still sanitised.
            rendered = date.strftime(format_spec or "%Y-%m-%d")
            return "/".join(sanitize_component(part) for part in rendered.split("/"))
        if format_spec and "%" in format_spec:
            return MISSING_PLACEHOLDER  # a date variable that does not parse as a date
        return sanitize_component(format(value, format_spec))


_FORMATTER = _KeyFormatter()
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def template_fields(template: str) -> list[str]:
    """The variable names a key template uses; raises ValueError for a malformed template."""
    names = []
    for _literal, name, _spec, _conv in _FORMATTER.parse(template):
        if name is None:
            continue
        if not _IDENTIFIER.match(name):
            # Attribute and index access ({id.__class__}, {0}) is not a key variable.
            raise ValueError(
                f"key template variable {{{name}}} must be a plain name such as {{id}} or {{date:%Y}}"
            )
        names.append(name)
    return names


@functools.lru_cache(maxsize=64)
def _compiled(template: str) -> tuple[tuple[str, str | None, str], ...] | None:
    """A template checked by :func:`template_fields` and parsed into (literal, variable, format
    spec) pieces, once per template (``Formatter.vformat`` parses it again for every binary); None
    for the rare template only the formatter renders ({id!r}, {id:{width}})."""
    template_fields(template)
    pieces = []
    for literal, name, spec, conversion in _FORMATTER.parse(template):
        if conversion or "{" in (spec or ""):
            return None
        pieces.append((literal, name, spec or ""))
    return tuple(pieces)


def _render(template: str, variables: Mapping[str, Any]) -> str:
    pieces = _compiled(template)
    if pieces is None:
        return _FORMATTER.vformat(template, (), variables)
    out = []
    for literal, name, spec in pieces:
        out.append(literal)
        if name is not None:
            out.append(_FORMATTER.format_field(_FORMATTER.get_field(name, (), variables)[0], spec))
    return "".join(out)


def render_key(template: str, variables: Mapping[str, Any]) -> str:
    """Render a blob key from a template and the variables of a :class:`rcetl.BlobRef`.

    Every value is sanitised by :func:`sanitize_component`; ``{date:...}`` takes a strftime format
    and accepts a datetime or an ISO-8601 string; a missing variable renders as ``_``. The result
    is a relative POSIX key without empty, ``.`` or ``..`` segments.
    """
    rendered = _render(template, variables)
    # Several variables in one segment ({id}-{name}) can together exceed the cap each one met.
    segments = [
        s if len(s.encode()) <= MAX_COMPONENT_BYTES else _shorten(s, s, MAX_COMPONENT_BYTES)
        for s in rendered.split("/")
        if s
    ]
    if not segments or any(s in (".", "..") for s in segments):
        raise ConfigError(
            f"key template {template!r} renders to {rendered!r}, which is not a safe relative key",
            hint="remove '.' and '..' segments from the template's literal text",
        )
    return "/".join(segments)


def versioned_key(key: str, version: int) -> str:
    """``a/b/name.ext`` -> ``a/b/name.v2.ext`` (the name for a different payload under a taken key)."""
    head, name = posixpath.split(key)
    stem, dot, ext = name.rpartition(".")
    new = f"{stem}.v{version}.{ext}" if dot and stem else f"{name}.v{version}"
    return posixpath.join(head, new) if head else new


def extension_for(ref: BlobRef) -> str:
    """A file extension from the API's file name or, failing that, the content type."""
    name = ref.variables.get("name")
    if isinstance(name, str) and "." in name.strip(". "):
        ext = name.rsplit(".", 1)[1]
        if 0 < len(ext) <= 8 and ext.isalnum():
            return ext.lower()
    ctype = (ref.content_type or "").split(";", 1)[0].strip().lower()
    guessed = _EXTENSIONS.get(ctype) or (mimetypes.guess_extension(ctype) if ctype else None)
    return guessed.lstrip(".") if guessed else "bin"


# Types RingCentral serves whose mimetypes guess is missing or odd on some platforms.
_EXTENSIONS = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "image/tiff": "tiff",
    "application/pdf": "pdf",
    "text/plain": "txt",
    "image/jpeg": "jpg",
}


def key_variables(ref: BlobRef, record: Record | None) -> dict[str, Any]:
    """The variables a key template sees: the source's ``BlobRef.variables`` over defaults taken
    from the ref and its record. See docs/sinks/object-stores.md for the list."""
    defaults: dict[str, Any] = {
        "id": ref.blob_id,
        "blob_id": ref.blob_id,
        "kind": ref.kind,
        "ext": extension_for(ref),
        "content_type": ref.content_type,
    }
    if record is not None:
        defaults.update(
            stream=record.stream, key=record.key, account=record.account or None, date=record.occurred_at
        )
    merged = {**defaults, **{k: v for k, v in ref.variables.items() if v is not None and v != ""}}
    return merged


class ObjectStoreConfig(PluginConfig):
    """Options every object-store sink shares."""

    key: str = DEFAULT_KEY_TEMPLATE
    """Key template; variables come from the blob and its record (docs/sinks/object-stores.md)."""
    prefix: str = ""
    """Put every key under this folder (``archive/ringcentral``)."""
    sidecar: bool | Literal["batch"] = True
    """Describe each blob (its record, size, SHA-256, content type): ``true`` in ``<key>.json``
    beside it; ``batch`` in one JSON Lines manifest per batch under ``_manifests/`` (one write per
    batch instead of one per blob); ``false``: not at all."""
    on_conflict: Literal["error", "version"] = "error"
    """A key already holds different bytes: fail the item (``error``) or write ``name.v2.ext``."""

    @field_validator("key")
    @classmethod
    def _valid_template(cls, value: str) -> str:
        template_fields(value)
        if not value.strip("/"):
            raise ValueError("key template is empty")
        return value

    @field_validator("prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        parts = [p for p in value.split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise ValueError("prefix must not contain '.' or '..' segments")
        return "/".join(parts)


class BucketStoreConfig(ObjectStoreConfig):
    """Options of an object store that keeps the archive in one bucket (S3, GCS)."""

    bucket: str
    """The bucket's name (each store's own pattern is checked by its config)."""
    sidecar: bool | Literal["batch"] = "batch"
    """As for every object store, but one manifest per batch by default: in a bucket each sidecar
    would be a request billed and waited for, and an object billed at the storage class's minimum
    size (128 KB in STANDARD_IA and GLACIER_IR) and per-object overhead (Glacier's 40 KB)."""
    create_bucket: bool = False
    """Create the bucket if it does not exist (demos and tests; production buckets are provisioned)."""


@dataclass
class ObjectInfo:
    """What a store reports about one object. ``sha256`` is the hex digest of the whole object when
    the store knows it (native checksum or the metadata rcetl wrote); ``checksums`` holds the store's
    own digests (``md5``, ``crc32c``, ``content_hash``, ``sha256_composite``...) for verification."""

    size: int
    sha256: str | None = None
    content_type: str | None = None
    checksums: dict[str, str] = field(default_factory=dict)


class KeyExists(Exception):
    """Raised by ``_upload`` when a create-only write lost to an object already under the key."""


def hash_file(path: str, *extra: Any) -> str:
    """SHA-256 of a file in one pass, feeding the same chunks to ``extra`` hashers (crc32c, md5,
    a Dropbox content hasher) so a store's own digest is checked without a second read."""
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            sha.update(chunk)
            for h in extra:
                h.update(chunk)
    return sha.hexdigest()


def sidecar_json(doc: Any, indent: bool = True) -> bytes:
    """``doc`` as JSON with sorted keys (what a sidecar holds: indented; a manifest line: not):
    orjson, and the standard library for what orjson refuses (ints beyond 64 bits, lone
    surrogates, non-string keys)."""
    import orjson  # here: `import rcetl` stays cheap

    option = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
    try:
        return orjson.dumps(doc, default=str, option=option | orjson.OPT_INDENT_2 if indent else option)
    except TypeError:
        return json.dumps(doc, ensure_ascii=False, indent=2 if indent else None, sort_keys=True, default=str,
                          separators=None if indent else (",", ":")).encode()


class ObjectStoreSink(BlobSink):
    """A blob sink over a key/value object store. Subclasses implement the primitives only.

    ``store`` (the template method): render the key; if an object is there with the same checksum,
    skip; if different, raise :class:`rcetl.ConflictError` or move to the next version key; else
    write the sidecar, upload create-only, and verify what the store reports against the SHA-256
    computed while the binary was downloaded. On a mismatch the object is deleted again and
    :class:`rcetl.IntegrityError` raised, so a re-run starts clean.
    """

    config: ObjectStoreConfig
    KeyExists: ClassVar[type[KeyExists]] = KeyExists
    #: SHA-256 of a file in one pass, feeding extra hashers the same chunks (see :func:`hash_file`).
    hash_file = staticmethod(hash_file)
    #: What ``location`` strings start with (``s3://bucket/``); a location is this plus the key.
    location_prefix: str = ""
    #: The store makes a sidecar's bytes durable only at :meth:`sync` (the local folder fsyncs them
    #: there, with the batch's folders): a run killed before its sync() may leave a binary whose
    #: sidecar is missing or cut short, so a binary found in place has its sidecar read back and
    #: rewritten when it does not describe it. Stores whose writes are durable on return: False.
    sidecar_durable_at_sync: ClassVar[bool] = False

    def __init__(self, name: str, config: ObjectStoreConfig, ctx: Any) -> None:
        super().__init__(name, config, ctx)
        self._handle: Any = None
        self._handle_lock = threading.Lock()
        # sidecar: batch: the lines (one per blob stored since the last sync) of the next manifest.
        self._manifest_lines: list[bytes] = []
        self._manifest_lock = threading.Lock()
        self._manifest_name = uuid.uuid4().hex[:12]  # this sink's manifests, apart from other runs'
        self._manifest_seq = 0

    @property
    def sidecar_beside(self) -> bool:
        """Each blob has its sidecar ``<key>.json`` (``sidecar: true``)."""
        return self.config.sidecar is True

    @property
    def sidecar_batched(self) -> bool:
        """Blobs are described in batch manifests (``sidecar: batch``)."""
        return self.config.sidecar == "batch"

    def handle(self) -> Any:
        """The store's SDK client, made on first use by :meth:`_connect` (thread-safe), so that a
        heavy SDK is imported only when the sink really talks to its store."""
        if self._handle is None:
            with self._handle_lock:
                if self._handle is None:
                    self._handle = self._connect()
        return self._handle

    def close(self) -> None:
        """Release the client :meth:`handle` made, if it made one (through :meth:`_disconnect`)."""
        with self._handle_lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            self._disconnect(handle)

    # --- primitives ---------------------------------------------------------------------------

    def sync(self) -> None:
        """Make durable everything :meth:`store` returned so far. The engine calls it once per
        batch, after the batch's binaries are stored and before any record naming them is written
        (or a checkpoint moves), so a sink may defer per-file durability work to it (the local
        folder fsyncs each folder that gained names once here). A store whose writes are durable
        when they return (S3, GCS) only writes the batch's manifest here (``sidecar: batch``)."""
        self._write_manifest()

    def _write_manifest(self) -> None:
        """One object describing every blob stored (or found in place) since the last call:
        written before any record names them, so every archived blob is described. Lines of blobs
        stored meanwhile by the next batch may ride along (described early, never late); on a
        failure the lines are kept for the next attempt."""
        with self._manifest_lock:
            lines, self._manifest_lines = self._manifest_lines, []
            if not lines:
                return
            self._manifest_seq += 1
            seq = self._manifest_seq
        now = datetime.now(timezone.utc)
        key = f"{self.manifest_root()}/{now:%Y/%m/%d}/{now:%Y%m%dT%H%M%SZ}-{self._manifest_name}-{seq:05d}.jsonl"
        try:
            self._guarded(lambda: self._put_small(key, b"".join(lines), "application/x-ndjson"),
                          f"writing the manifest {key}")
        except BaseException:
            with self._manifest_lock:
                self._manifest_lines[:0] = lines
            raise

    def manifest_root(self) -> str:
        """The folder of this sink's batch manifests (``<prefix>/_manifests``)."""
        return f"{self.config.prefix}/{MANIFESTS}" if self.config.prefix else MANIFESTS

    def is_manifest(self, key: str) -> bool:
        return key.startswith(self.manifest_root() + "/") and key.endswith(".jsonl")

    def _found(self, key: str) -> None:
        """``key`` already holds the bytes being stored: it is about to be reported stored
        (skipped). A store that defers durability to :meth:`sync` must cover it too: a run killed
        before its ``sync()`` may have left it there, written but not yet durable."""

    def _disconnect(self, handle: Any) -> None:
        """Close the client :meth:`_connect` made (default: nothing to close)."""

    def _connect(self) -> Any:
        """Create the SDK client (or bucket handle) :meth:`handle` returns."""
        raise NotImplementedError

    def _head(self, key: str) -> ObjectInfo | None:
        """What the store holds under ``key``, or None."""
        raise NotImplementedError

    def _upload(self, key: str, blob: SpooledBlob, metadata: dict[str, str]) -> ObjectInfo:
        """Upload the spooled file under ``key``, create-only where the store can (raise
        :class:`KeyExists` when another writer got there first). Return what the store reports."""
        raise NotImplementedError

    def _put_small(self, key: str, data: bytes, content_type: str) -> None:
        """Write a small object (a sidecar), replacing any object under the key."""
        raise NotImplementedError

    def _rewrite_small(self, key: str, data: bytes, content_type: str) -> None:
        """Replace a sidecar whose binary is already in place (records may name it): atomically,
        where :meth:`_put_small` may not be (the local folder writes a new key's sidecar in place)."""
        self._put_small(key, data, content_type)

    def _open(self, key: str) -> BinaryIO:
        raise NotImplementedError

    def _delete(self, key: str) -> None:
        raise NotImplementedError

    def _classify(self, exc: BaseException) -> RcetlError | None:
        """Turn a store SDK's exception into a Transient/Permanent/Config error, or None if unknown."""
        return None

    def _verify(self, blob: SpooledBlob, info: ObjectInfo) -> None:
        """Check what the store reports after an upload against the spooled blob. The default
        trusts a store-computed whole-object SHA-256; stores that report other digests override."""
        if info.sha256 is None:
            raise IntegrityError(f"{self.name}: the store reported no SHA-256 for the upload")
        self._expect(blob, "sha256", blob.sha256, info.sha256)

    # --- the template method ------------------------------------------------------------------

    def key_for(self, ref: BlobRef, record: Record | None = None) -> str:
        key = render_key(self.config.key, key_variables(ref, record))
        return f"{self.config.prefix}/{key}" if self.config.prefix else key

    def location(self, key: str) -> str:
        return self.location_prefix + key

    def store(self, blob: SpooledBlob) -> StoredBlob:
        base = self.key_for(blob.ref, blob.record)
        return self._guarded(lambda: self._store_at(blob, base), f"storing {blob.ref.blob_id} at {base}")

    def _store_at(self, blob: SpooledBlob, base: str) -> StoredBlob:
        version = 1
        while True:
            key = base if version == 1 else versioned_key(base, version)
            existing = self._head(key)
            if existing is None:
                try:
                    return self._write_new(key, blob)
                except KeyExists:
                    existing = self._head(key)  # lost a race: judge the winner like any other object
                    if existing is None:
                        continue
            if self._same_content(blob, existing):
                self._found(key)
                if self.sidecar_beside and self.sidecar_durable_at_sync \
                        and self._sidecar_sha256(key) != blob.sha256:
                    self._rewrite_small(self.sidecar_key(key), self.sidecar_bytes(key, blob), "application/json")
                return self._stored(key, blob, skipped=True)
            if self._replaces_invalid(key, blob):
                continue  # the bad bytes are gone: write the good ones under the same key
            if self.config.on_conflict == "error":
                raise ConflictError(
                    f"{self.name}: {self.location(key)} already holds different bytes "
                    f"(size {existing.size}, sha256 {existing.sha256 or 'unknown'}; new: size {blob.size}, sha256 {blob.sha256})",
                    hint="set on_conflict: version to keep both, or check that the key template has the blob id in it",
                )
            version += 1
            if version > MAX_VERSIONS:
                raise ConflictError(
                    f"{self.name}: {MAX_VERSIONS} versions of {base} exist", hint="check the key template"
                )

    def _write_new(self, key: str, blob: SpooledBlob) -> StoredBlob:
        # The sidecar goes first: once the blob exists its sidecar does too, so a skipped re-run
        # never has to look for it.
        if self.sidecar_beside:
            self._put_small(self.sidecar_key(key), self.sidecar_bytes(key, blob), "application/json")
        info = self._upload(key, blob, {"sha256": blob.sha256})
        try:
            self._verify(blob, info)
        except IntegrityError:
            self._discard(key)
            raise
        return self._stored(key, blob, skipped=False)

    def _replaces_invalid(self, key: str, blob: SpooledBlob) -> bool:
        """Replace what ``key`` holds when it fails the content check of the binary it stands for
        (an HTML login page or a JSON error body an older rcetl archived as a recording) and the new
        bytes pass it: the only case where stored bytes are overwritten. Returns True once deleted."""
        from .content import replaces_invalid  # only on a conflict: rare

        try:
            with blob.open() as new, self._open(key) as stored:
                if not replaces_invalid(blob.ref, stored, new):
                    return False
        except Exception:  # unreadable: judged by the conflict rules as before
            return False
        self.ctx.logger.warning("%s: %s held bytes that fail the content check of %s %s; replacing them",
                                self.name, self.location(key), blob.ref.kind, blob.ref.blob_id)
        self._discard(key)
        return True

    def _discard(self, key: str) -> None:
        for k in (key, self.sidecar_key(key)) if self.sidecar_beside else (key,):
            try:
                self._delete(k)
            except Exception as exc:  # the integrity error matters more than a failed clean-up
                self.ctx.logger.warning(
                    "%s: could not delete %s after a checksum mismatch: %s", self.name, k, exc
                )

    def _same_content(self, blob: SpooledBlob, info: ObjectInfo) -> bool:
        return info.size == blob.size and info.sha256 is not None and info.sha256 == blob.sha256

    def _stored(self, key: str, blob: SpooledBlob, skipped: bool) -> StoredBlob:
        """What :meth:`store` returns for ``blob`` held at ``key``; with ``sidecar: batch`` the
        blob's line joins the next manifest (also when found in place: a run killed before its
        sync() stored it without one)."""
        if self.sidecar_batched:
            line = sidecar_json(self.sidecar_doc(key, blob), indent=False) + b"\n"
            with self._manifest_lock:
                self._manifest_lines.append(line)
        return StoredBlob(
            sink=self.name,
            location=self.location(key),
            size=blob.size,
            sha256=blob.sha256,
            content_type=blob.content_type or blob.ref.content_type,
            skipped=skipped,
        )

    def _expect(self, blob: SpooledBlob, what: str, expected: str, reported: str | None) -> None:
        if reported != expected:
            raise IntegrityError(
                f"{self.name}: {what} mismatch for blob {blob.ref.blob_id}: downloaded {expected}, store reports {reported}",
                hint="the spooled file or the upload was corrupted; the item will be retried on the next run",
            )

    def _guarded(self, action: Callable[[], Any], doing: str) -> Any:
        try:
            return action()
        except RcetlError:
            raise
        except Exception as exc:
            err = self._classify(exc) or classify_common(exc)
            if err is None:
                raise
            err.message = f"{self.name}: {doing}: {err.message}"
            raise err from exc

    # --- sidecars -----------------------------------------------------------------------------

    @staticmethod
    def sidecar_key(key: str) -> str:
        return key + ".json"

    def sidecar_bytes(self, key: str, blob: SpooledBlob) -> bytes:
        return sidecar_json(self.sidecar_doc(key, blob))

    @staticmethod
    def sidecar_doc(key: str, blob: SpooledBlob) -> dict[str, Any]:
        """What a sidecar (or a manifest line) says of ``blob`` stored at ``key``."""
        return {
            "blob": {
                "blob_id": blob.ref.blob_id,
                "kind": blob.ref.kind,
                "key": key,
                "size": blob.size,
                "sha256": blob.sha256,
                "content_type": blob.content_type or blob.ref.content_type,
            },
            "record": blob.record.to_json() if blob.record is not None else None,
        }

    def _list(self) -> Iterator[str]:
        """Every key under the sink's prefix (for finding binaries stored twice). Optional."""
        raise NotImplementedError

    # --- verification API ---------------------------------------------------------------------

    def stat_location(self, location: str) -> StoredBlob | None:
        return self._stat_key(self.key_of(location))

    def iter_stored(self) -> Iterator[tuple[str, str]]:
        """(location, blob_id) of every binary, read from the sidecars and the batch manifests
        (an archive may hold both: written before and after a change of ``sidecar``); needs
        ``sidecar: true`` or ``batch``. A blob a manifest names but the store no longer holds is
        left out (a manifest is never rewritten)."""
        if self.config.sidecar is False:
            raise NotImplementedError
        keys = self._guarded(lambda: list(self._list()), "listing the store")
        present = set(keys)
        for key in keys:
            if self.is_manifest(key):
                for doc in self._read_json(key, lines=True):
                    blob = doc.get("blob") if isinstance(doc, dict) else None
                    if isinstance(blob, dict) and blob.get("blob_id") and blob.get("key") in present:
                        yield self.location(str(blob["key"])), str(blob["blob_id"])
            elif key.endswith(".json"):
                for doc in self._read_json(key, lines=False):
                    blob = doc.get("blob") if isinstance(doc, dict) else None
                    if isinstance(blob, dict) and blob.get("blob_id"):
                        yield self.location(key[: -len(".json")]), str(blob["blob_id"])

    def _read_json(self, key: str, lines: bool) -> list[Any]:
        """The JSON document under ``key`` (or each line's): [] when unreadable, and a line that is
        not JSON (a manifest a killed run left cut short) left out."""
        try:
            with self._guarded(functools.partial(self._open, key), f"reading {key}") as fh:
                data = fh.read()
        except RcetlError:
            return []
        docs = []
        for text in data.splitlines() if lines else [data]:
            try:
                docs.append(json.loads(text))
            except ValueError:
                continue
        return docs

    def stat(self, blob_ref: BlobRef, record: Record | None = None) -> StoredBlob | None:
        return self._stat_key(self.key_for(blob_ref, record))

    def _stat_key(self, key: str) -> StoredBlob | None:
        info = self._guarded(lambda: self._head(key), f"looking up {key}")
        if info is None:
            return None
        sha256 = info.sha256 or (self._sidecar_sha256(key) if self.sidecar_beside else None)
        return StoredBlob(
            sink=self.name,
            location=self.location(key),
            size=info.size,
            sha256=sha256 or "",
            content_type=info.content_type,
            skipped=True,
        )

    def _sidecar_sha256(self, key: str) -> str | None:
        """The SHA-256 recorded in a blob's sidecar, for stores that keep no SHA-256 of their own."""
        try:
            with self._open(self.sidecar_key(key)) as fh:
                return json.load(fh)["blob"]["sha256"]
        except Exception:  # no sidecar, or not ours: the caller reports the checksum as unknown
            return None

    def key_of(self, location: str) -> str:
        if not location.startswith(self.location_prefix):
            raise PermanentError(
                f"{self.name}: {location!r} is not a location of this sink",
                hint=f"locations of this sink start with {self.location_prefix!r}",
            )
        return location[len(self.location_prefix) :]

    def open_stored(self, location: str) -> BinaryIO:
        key = self.key_of(location)
        return self._guarded(lambda: self._open(key), f"opening {location}")


class BucketStoreSink(ObjectStoreSink):
    """An object store whose binaries live in one bucket: locations are
    ``<location_scheme>://<bucket>/<key>``; the bucket is checked (and made, with
    ``create_bucket: true``) when the sink opens and by ``rcetl check``."""

    config: BucketStoreConfig
    #: The scheme of the store's locations: ``s3``, ``gs``.
    location_scheme: ClassVar[str]

    def __init__(self, name: str, config: BucketStoreConfig, ctx: Any) -> None:
        super().__init__(name, config, ctx)
        self.location_prefix = f"{self.location_scheme}://{config.bucket}/"

    def open(self) -> None:
        self._guarded(self._ensure_bucket, f"opening bucket {self.config.bucket}")

    def check(self) -> None:
        self.open()

    def _ensure_bucket(self) -> None:
        """Check that the bucket exists; create it when it does not and ``create_bucket`` is set,
        else let the store's error through (classified by :meth:`_classify`)."""
        raise NotImplementedError


_TRANSIENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EIO, errno.EINTR, errno.EBUSY}


def classify_common(exc: BaseException) -> RcetlError | None:
    """Faults any store can raise: timeouts, dropped connections, a full disk."""
    if isinstance(exc, (TimeoutError, socket.timeout, ConnectionError)):
        return TransientError(
            f"network fault: {exc}", hint="retried on the next run; check the store's reachability"
        )
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        what = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "I/O fault"
        return TransientError(
            f"{what}: {exc}", hint="free space or fix the device; the item is retried on the next run"
        )
    if isinstance(exc, OSError) and exc.errno == errno.EROFS:
        return PermanentError(f"read-only file system: {exc}", hint="mount the archive's folder read-write")
    if isinstance(exc, FileNotFoundError):
        return PermanentError(f"not found: {exc}", hint="the object was deleted or never stored")
    if isinstance(exc, PermissionError):
        return PermanentError(f"permission denied: {exc}", hint="check the folder's owner and mode")
    return None
