"""Reconcile an archive against its source: prove that every sink holds what the source holds.

The source is read again for the date range (its list endpoints only: binaries are not
downloaded, they cost budget), and compared with what each record sink reports it holds and
what each blob sink stores. Binaries are checked against the size and SHA-256 recorded when
they were archived; ``rehash`` reads them back from the sinks to hash the stored bytes.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .blobs import ObjectStoreSink
from .engine.runtime import Engine
from .errors import RcetlError
from .interfaces import BlobSink, RecordSink, Stream
from .records import Record
from .secrets import redact

log = logging.getLogger("rcetl.verify")

PROBLEM_KINDS = ("missing", "duplicate", "missing-file", "mismatch", "failed")


@dataclass
class Finding:
    kind: str  # missing | duplicate | missing-file | mismatch | failed | gone | stray | unlisted
    stream: str
    account: str
    key: Any
    sink: str = ""
    detail: str = ""


@dataclass
class StreamCounts:
    source: int = 0
    sinks: dict[str, int] = field(default_factory=dict)
    binaries: int = 0
    gone: int = 0


@dataclass
class VerifyReport:
    findings: list[Finding] = field(default_factory=list)
    streams: dict[str, StreamCounts] = field(default_factory=lambda: defaultdict(StreamCounts))
    usage: dict[tuple[str, str], Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    verified: dict[tuple[str, str, str], Record] = field(default_factory=dict)  # proven everywhere

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.kind in PROBLEM_KINDS]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": len(self.problems),
            "streams": {k: asdict(v) for k, v in self.streams.items()},
            "findings": [asdict(f) for f in self.findings],
            "usage": [{"day": d, "extension": e, **dict(c)} for (d, e), c in sorted(self.usage.items())],
        }


def _k(account: str, key: Any) -> tuple[str, str]:
    return (account, repr(key))


def _source_records(engine: Engine) -> Iterator[tuple[Stream, Record]]:
    """Every record the source holds in the run's window, with children derived as in a run."""
    for task in engine.tasks():
        stream = engine.streams[(task.connection, task.source, task.stream)]
        children = engine._children(task.connection, task.stream)
        for item in stream.read(task.partition, None, engine.window):
            if not isinstance(item, Record):
                continue
            yield stream, item
            for _, child in children:
                for derived in child.derive(item):
                    yield child, derived


def verify(engine: Engine, *, rehash: bool | None = None) -> VerifyReport:
    """Compare source and sinks. ``rehash``: None hashes only where it is cheap (local folders)."""
    report = VerifyReport()
    pipeline = engine.pipeline
    source: dict[str, dict[tuple[str, str], Record]] = defaultdict(dict)
    for stream, record in _source_records(engine):
        source[record.stream][_k(record.account, record.key)] = record
        for row in stream.usage(record):
            report.usage[(row.day, row.extension)].update(row.counts)
    held_by_stream: dict[str, dict[str, dict[tuple[str, str], Any]]] = {}
    for stream_name, records in source.items():
        counts = report.streams[stream_name]
        counts.source = len(records)
        held: dict[str, dict[tuple[str, str], Any]] = {}
        for conf in pipeline.record_sinks_for(stream_name):
            sink = engine.sinks[conf.name]
            if not isinstance(sink, RecordSink):
                continue
            entries: dict[tuple[str, str], Any] = {}
            for entry in sink.archived(stream_name):
                k = _k(entry.account, entry.key)
                if k in entries or entry.copies > 1:
                    report.findings.append(Finding("duplicate", stream_name, entry.account, entry.key, conf.name,
                                                   f"held {max(entry.copies, 2)} times"))
                entries[k] = entry
            held[conf.name] = entries
            held_by_stream.setdefault(stream_name, {})[conf.name] = entries
            counts.sinks[conf.name] = len(entries)
            for k, record in records.items():
                if k not in entries:
                    report.findings.append(Finding("missing", stream_name, record.account, record.key, conf.name,
                                                   "held by the source, not by this sink"))
        blob_confs = [c for c in pipeline.blob_sinks_for(stream_name) if isinstance(engine.sinks[c.name], BlobSink)]
        for k, record in records.items():
            ok = all(k in entries for entries in held.values())
            for ref in record.blobs:
                counts.binaries += 1
                archived = _archive_entry(held, k, ref.blob_id)
                if archived is None:
                    continue  # the record itself is missing: reported above
                if archived.get("status") == "gone":
                    counts.gone += 1
                    report.findings.append(Finding("gone", stream_name, record.account, record.key, "",
                                                   f"{ref.kind} {ref.blob_id} was gone at the source when archived"))
                    continue
                for conf in blob_confs:
                    problem = _check_blob(engine.sinks[conf.name], conf.name, ref, record, archived, rehash)
                    if problem:
                        ok = False
                        report.findings.append(Finding(problem[0], stream_name, record.account, record.key,
                                                       conf.name, problem[1]))
            if ok:
                report.verified[(stream_name, *k)] = record
    for conf in pipeline.sinks:
        sink = engine.sinks.get(conf.name)
        if isinstance(sink, BlobSink):
            _duplicate_objects(sink, conf.name, report, _archived_locations(source, held_by_stream, conf.name))
    for item in engine.state.failed(pipeline.name):
        report.findings.append(Finding("failed", item.stream, item.account, item.key, "",
                                       f"in the failed-item queue after {item.attempts} attempt(s): {item.error}"))
        report.verified.pop((item.stream, *_k(item.account, item.key)), None)
    return report


def _archive_entry(held: dict[str, dict[tuple[str, str], Any]], k: tuple[str, str], blob_id: str) -> dict | None:
    for entries in held.values():
        entry = entries.get(k)
        if entry is None:
            continue
        for blob in entry.archive or []:
            if blob.get("blob_id") == blob_id:
                return blob
    return None


def _check_blob(sink: BlobSink, name: str, ref: Any, record: Record, archived: dict,
                rehash: bool | None) -> tuple[str, str] | None:
    expected_size, expected_sha = archived.get("size"), archived.get("sha256")
    location = (archived.get("locations") or {}).get(name)
    try:
        try:
            # Where it was stored: the key may have been named after what the server served.
            stored = sink.stat_location(location) if location else sink.stat(ref, record)
        except NotImplementedError:
            stored = sink.stat(ref, record)
    except NotImplementedError:
        return None
    except RcetlError as exc:
        return ("missing-file", f"{ref.kind} {ref.blob_id}: cannot check: {redact(exc.message)}")
    if stored is None:
        return ("missing-file", f"{ref.kind} {ref.blob_id} is not in the sink")
    if expected_size is not None and stored.size != expected_size:
        return ("mismatch", f"{ref.kind} {ref.blob_id}: {stored.size} bytes stored, {expected_size} archived")
    if expected_sha and stored.sha256 and stored.sha256 != expected_sha:
        return ("mismatch", f"{ref.kind} {ref.blob_id}: SHA-256 differs from the archived one")
    if rehash or (rehash is None and getattr(sink, "rehash_is_cheap", False)):
        digest = hashlib.sha256()
        try:
            with sink.open_stored(stored.location) as fh:
                for chunk in iter(lambda: fh.read(1024 * 1024), b""):
                    digest.update(chunk)
        except (NotImplementedError, OSError, RcetlError) as exc:
            return ("missing-file", f"{ref.kind} {ref.blob_id}: cannot read back: {redact(str(exc))}")
        if expected_sha and digest.hexdigest() != expected_sha:
            return ("mismatch", f"{ref.kind} {ref.blob_id}: stored bytes hash differently (corrupted)")
    return None


def _archived_locations(source: dict, held_by_stream: dict, sink_name: str) -> dict[str, tuple[str, str]]:
    """location -> (blob_id, sha256) of every binary the record sinks say is stored in ``sink_name``."""
    out: dict[str, tuple[str, str]] = {}
    for entries_by_sink in held_by_stream.values():
        for entries in entries_by_sink.values():
            for entry in entries.values():
                for blob in entry.archive or []:
                    location = (blob.get("locations") or {}).get(sink_name)
                    if location:
                        out[location] = (str(blob.get("blob_id")), str(blob.get("sha256") or ""))
    return out


def _listed_objects(sink: BlobSink) -> Iterator[tuple[str, str | None]]:
    """Every (location, blob_id or None) the sink holds, sidecars left out. Blob ids come from the
    sink's ``iter_stored`` (its sidecars); every key comes from an object store's ``_list``, so a bare
    copy without a sidecar is listed too; failing both, a sink whose objects are files under a local
    ``root`` folder is walked. Raises NotImplementedError when the sink cannot be listed at all."""
    ids: dict[str, str] = {}
    try:
        ids = dict(sink.iter_stored())
    except NotImplementedError:
        pass
    keys: list[str] | None = None
    if isinstance(sink, ObjectStoreSink):
        try:
            keys = [sink.location(k) for k in sink._guarded(lambda: list(sink._list()), "listing the store")]
        except NotImplementedError:
            keys = None
    if keys is None:
        root = getattr(sink, "root", None)
        if isinstance(root, Path) and root.is_dir():
            keys = [str(p) for p in root.rglob("*") if p.is_file()]
        elif ids:
            yield from ids.items()
            return
        else:
            raise NotImplementedError(f"sink {sink.name!r} cannot list what it stores")
    present = set(keys)
    for location in sorted(present):
        name = location.rsplit("/", 1)[-1]
        if name.startswith(".") or name.endswith(".part"):
            continue  # a write in flight (or a killed one): not an object
        if location.endswith(".json") and location[:-5] in present:
            continue  # a sidecar
        yield location, ids.get(location)


def _duplicate_objects(sink: BlobSink, name: str, report: VerifyReport,
                       archived: dict[str, tuple[str, str]]) -> None:
    """Binaries stored more than once: two objects naming the same blob id, or an object no record
    points at whose bytes are those of an archived binary (a copy under another key)."""
    try:
        listed = list(_listed_objects(sink))
    except NotImplementedError:
        report.findings.append(Finding("unlisted", "", "", "", name,
                                       "this sink cannot list its objects: copies under other keys are not looked for"))
        return
    by_sha = {sha: blob_id for blob_id, sha in archived.values() if sha}
    seen: Counter[str] = Counter()
    for location, blob_id in listed:
        if location in archived:
            seen[archived[location][0]] += 1
            continue
        if blob_id is None and by_sha:
            try:
                with sink.open_stored(location) as fh:
                    digest = hashlib.sha256()
                    for chunk in iter(lambda: fh.read(1024 * 1024), b""):  # noqa: B023
                        digest.update(chunk)
                blob_id = by_sha.get(digest.hexdigest())
            except (NotImplementedError, OSError, RcetlError):
                blob_id = None
        if blob_id is None:
            report.findings.append(Finding("stray", "", "", location, name, "an object no archived record points at"))
            continue
        seen[str(blob_id)] += 1
        report.findings.append(Finding("duplicate", "", "", blob_id, name,
                                       f"binary {blob_id} also stored at {location}, which no record points at"))
    for blob_id, n in seen.items():
        if n > 1 and not any(f.kind == "duplicate" and f.key == blob_id and f.sink == name for f in report.findings):
            report.findings.append(Finding("duplicate", "", "", blob_id, name, f"binary {blob_id} stored {n} times"))
