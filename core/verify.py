"""Reconcile an archive against its source: prove that every sink holds what the source holds.

The source is read again for the date range (its list endpoints only: binaries are not
downloaded, they cost budget), and compared with what each record sink reports it holds and
what each blob sink stores. Evidence, not only rcetl's own notes:

- every binary the source names is in the record's archive under its identity (a record archived
  under an older identity, e.g. attachments named by their id alone, is ``not-archived``);
- no two source items share one stored binary unless they were downloaded separately and hashed
  the same (``shared``: one item's bytes stand in for another's, whose own were never stored);
- sizes match what the source declared, and what each sink stores matches the recorded size and
  SHA-256; where stored bytes are read back (``rehash``; by default only where cheap, e.g. a local
  folder) they are hashed and pass the content check of :mod:`rcetl.content` (``content``);
- ``deep=N`` downloads a random sample of N binaries again (budget permitting: through the same
  budget as a run) and compares their SHA-256 with the record and with every sink's stored bytes:
  the only check a swapped file with a matching checksum record cannot pass (``deep-mismatch``).

Items whose stored bytes were read back everywhere (or re-downloaded) are recorded as *proven* in
the state store; ``rcetl purge`` deletes only recently proven items. Items whose stored content
fails the content check are queued for the next run, which downloads and replaces them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from .blobs import ObjectStoreSink
from .content import EvidenceRecorder, check_content
from .engine.opened import OpenedPipeline
from .engine.spool import HashingSpool
from .errors import ItemGone, RcetlError
from .interfaces import BlobSink, RecordSink, RunWindow, Stream
from .records import BlobRef, Record
from .secrets import redact

log = logging.getLogger("rcetl.verify")

#: Findings that make verify exit 1 (and keep an item at the source).
PROBLEM_KINDS = ("missing", "duplicate", "missing-file", "mismatch", "failed", "not-archived", "shared",
                 "content", "deep-mismatch")
#: Findings reported for information: gone (archived as gone at the source), stray / superseded
#: (objects no record points at), unlisted / unread (checks a sink could not make), deleted-at-source
#: (held by the archive, no longer listed by the source), deep-skipped (a sample that could not be fetched).
READ_CHUNK = 1 << 20

ItemId = tuple[str, str, str]  # (stream, account, repr(key))


@dataclass
class Finding:
    kind: str
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
    deleted_at_source: int = 0


@dataclass
class Proof:
    """An item proven archived by evidence: ``how`` is ``deep`` (re-downloaded and compared),
    ``read-back`` (stored bytes read from every sink, hashed and content-checked) or ``present``
    (no stored binary: every record sink holds the record)."""

    record: Record
    digest: str
    how: str


@dataclass
class VerifyReport:
    findings: list[Finding] = field(default_factory=list)
    streams: dict[str, StreamCounts] = field(default_factory=lambda: defaultdict(StreamCounts))
    usage: dict[tuple[str, str], Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    verified: dict[ItemId, Record] = field(default_factory=dict)  # no problem found anywhere
    proven: dict[ItemId, Proof] = field(default_factory=dict)  # ... and the evidence read back
    #: every item the source holds in the range, and the digest of what its archive names now
    source: dict[ItemId, Record] = field(default_factory=dict)
    digests: dict[ItemId, str] = field(default_factory=dict)
    deep: dict[str, int] = field(default_factory=dict)  # re-downloads per stream (the sample)
    #: items whose every binary was already gone at the source when archived (nothing left to free)
    gone: set[ItemId] = field(default_factory=set)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.kind in PROBLEM_KINDS]

    @property
    def ok(self) -> bool:
        return not self.problems

    def findings_for(self, item: ItemId) -> list[Finding]:
        return [f for f in self.problems if (f.stream, f.account, repr(f.key)) == item]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": len(self.problems),
            "streams": {k: asdict(v) for k, v in self.streams.items()},
            "findings": [asdict(f) for f in self.findings],
            "proven": len(self.proven),
            "deep": dict(self.deep),
            "usage": [{"day": d, "extension": e, **dict(c)} for (d, e), c in sorted(self.usage.items())],
        }


def _k(account: str, key: Any) -> tuple[str, str]:
    return (account, repr(key))


def _source_records(opened: OpenedPipeline, window: RunWindow
                    ) -> Iterator[tuple[Stream, tuple[str, str], Record]]:
    """Every record the source holds in ``window``, with children derived as in a run, and
    the (connection, source) it came from (what the failed-item queue needs to retry it)."""
    for task in opened.tasks():
        stream = opened.streams[(task.connection, task.source, task.stream)]
        children = opened.children(task.connection, task.stream)
        for item in stream.read(task.partition, None, window):
            if not isinstance(item, Record):
                continue
            yield stream, (task.connection, task.source), item
            for child_source, child in children:
                for derived in child.derive(item):
                    yield child, (task.connection, child_source), derived


def archive_digest(archive: list[dict[str, Any]] | None) -> str:
    """A digest of what an archive entry names (binaries, checksums, locations): a proof of
    verification is valid only while the archive names the same bytes."""
    rows = sorted(
        (str(b.get("blob_id")), str(b.get("status")), str(b.get("sha256")), json.dumps(b.get("locations") or {},
                                                                                        sort_keys=True))
        for b in archive or [])
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def verify(opened: OpenedPipeline, window: RunWindow, *, rehash: bool | None = None, deep: int = 0,
           seed: int | None = None,
           record_proofs: bool = True, queue_repairs: bool = True) -> VerifyReport:
    """Compare source and sinks. ``rehash``: None reads stored bytes back only where it is cheap
    (local folders); ``deep``: re-download this many binaries, chosen at random, and compare."""
    report = VerifyReport()
    pipeline = opened.pipeline
    source: dict[str, dict[tuple[str, str], Record]] = defaultdict(dict)
    streams: dict[ItemId, tuple[Stream, tuple[str, str]]] = {}
    for stream, origin, record in _source_records(opened, window):
        k = _k(record.account, record.key)
        source[record.stream][k] = record
        item: ItemId = (record.stream, *k)
        streams[item] = (stream, origin)
        report.source[item] = record
        for row in stream.usage(record):
            report.usage[(row.day, row.extension)].update(row.counts)
    held_by_stream: dict[str, dict[str, dict[tuple[str, str], Any]]] = {}
    repairs: list[tuple[ItemId, str]] = []
    read_back: dict[ItemId, bool] = {}
    samples: list[tuple[ItemId, BlobRef, dict]] = []
    for stream_name, records in source.items():
        counts = report.streams[stream_name]
        counts.source = len(records)
        held = _held(opened, stream_name, report, counts)
        held_by_stream[stream_name] = held
        for name, entries in held.items():
            for k, record in records.items():
                if k not in entries:
                    report.findings.append(Finding("missing", stream_name, record.account, record.key, name,
                                                   "held by the source, not by this sink"))
        blob_confs = [c for c in pipeline.blob_sinks_for(stream_name) if isinstance(opened.sinks[c.name], BlobSink)]
        for k, record in records.items():
            item = (stream_name, *k)
            ok = all(k in entries for entries in held.values())
            everywhere = True
            digest = None
            for entries in held.values():
                if k in entries:
                    digest = archive_digest(entries[k].archive)
                    break
            if digest is not None:
                report.digests[item] = digest
            if record.deleted and any(k in e and not e[k].deleted for e in held.values()):
                counts.deleted_at_source += 1
                report.findings.append(Finding(
                    "deleted-at-source", stream_name, record.account, record.key, "",
                    "deleted at the source since it was archived (the archive holds it as live); the next run "
                    "marks it deleted"))
            for ref in record.blobs:
                counts.binaries += 1
                archived = _archive_entry(held, k, ref.blob_id)
                if archived is None:
                    if any(k in entries for entries in held.values()):
                        ok = False
                        report.findings.append(Finding(
                            "not-archived", stream_name, record.account, record.key, "",
                            f"{ref.kind} {ref.blob_id} is not in this record's archive (archived under another "
                            "identity by an older rcetl, or never): the next run archives it"))
                    continue  # else the record itself is missing: reported above
                if archived.get("status") == "gone":
                    counts.gone += 1
                    report.findings.append(Finding("gone", stream_name, record.account, record.key, "",
                                                   f"{ref.kind} {ref.blob_id} was gone at the source when archived"))
                    continue
                if ref.size is not None and archived.get("size") is not None and ref.size != archived["size"]:
                    ok = False
                    report.findings.append(Finding(
                        "mismatch", stream_name, record.account, record.key, "",
                        f"{ref.kind} {ref.blob_id}: the source declares {ref.size} bytes, {archived['size']} archived"))
                samples.append((item, ref, archived))
                for conf in blob_confs:
                    blob_sink = opened.sinks[conf.name]
                    assert isinstance(blob_sink, BlobSink)  # blob_confs holds blob sinks only
                    check = _check_blob(blob_sink, conf.name, ref, record, archived, rehash)
                    everywhere = everywhere and check.read_back
                    if check.problem:
                        ok = False
                        kind, detail = check.problem
                        report.findings.append(Finding(kind, stream_name, record.account, record.key,
                                                       conf.name, detail))
                        if kind == "content":
                            repairs.append((item, detail))
            if record.blobs and all((_archive_entry(held, k, ref.blob_id) or {}).get("status") == "gone"
                                    for ref in record.blobs):
                report.gone.add(item)
            if ok:
                report.verified[item] = record
                read_back[item] = everywhere
    _shared_binaries(held_by_stream, report)
    _deleted_at_source(window, source, held_by_stream, report)
    for conf in pipeline.sinks:
        sink = opened.sinks.get(conf.name)
        if isinstance(sink, BlobSink):
            _duplicate_objects(sink, conf.name, report, _archived_locations(held_by_stream, conf.name))
    for failed in opened.state.failed(pipeline.name):
        report.findings.append(Finding("failed", failed.stream, failed.account, failed.key, "",
                                       f"in the failed-item queue after {failed.attempts} attempt(s): {failed.error}"))
        report.verified.pop((failed.stream, *_k(failed.account, failed.key)), None)
    deep_ok = _deep(opened, report, streams, samples, deep, seed) if deep > 0 else set()
    for item, record in report.verified.items():
        if item in deep_ok:
            how = "deep"
        elif read_back.get(item) and record.blobs:
            how = "read-back"
        elif not record.blobs or all(b.get("status") == "gone" for b in _archived_blobs(held_by_stream, item)):
            how = "present"
        else:
            continue  # stat only: no bytes were read, nothing is proven
        report.proven[item] = Proof(record, report.digests.get(item, ""), how)
    if record_proofs:
        disproven = {(f.stream, f.account, f.key) for f in report.problems if f.stream}
        opened.state.record_proofs(
            pipeline.name,
            [(p.record.stream, p.record.account, p.record.key, p.digest, p.how) for p in report.proven.values()],
            sorted(disproven, key=repr))
    if queue_repairs:
        _queue_repairs(opened, report, streams, repairs)
    return report


def _held(opened: OpenedPipeline, stream_name: str, report: VerifyReport, counts: StreamCounts
          ) -> dict[str, dict[tuple[str, str], Any]]:
    """What each record sink holds of a stream; copies held twice are ``duplicate``."""
    held: dict[str, dict[tuple[str, str], Any]] = {}
    for conf in opened.pipeline.record_sinks_for(stream_name):
        sink = opened.sinks[conf.name]
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
        counts.sinks[conf.name] = len(entries)
    return held


def _archived_blobs(held_by_stream: dict, item: ItemId) -> list[dict]:
    for entries in held_by_stream.get(item[0], {}).values():
        entry = entries.get(item[1:])
        if entry is not None:
            return list(entry.archive or [])
    return []


def _archive_entry(held: dict[str, dict[tuple[str, str], Any]], k: tuple[str, str], blob_id: str) -> dict | None:
    for entries in held.values():
        entry = entries.get(k)
        if entry is None:
            continue
        for blob in entry.archive or []:
            if blob.get("blob_id") == blob_id:
                return blob
    return None


@dataclass
class _BlobCheck:
    problem: tuple[str, str] | None = None
    read_back: bool = False


def _check_blob(sink: BlobSink, name: str, ref: BlobRef, record: Record, archived: dict,
                rehash: bool | None) -> _BlobCheck:
    expected_size, expected_sha = archived.get("size"), archived.get("sha256")
    location = (archived.get("locations") or {}).get(name)
    what = f"{ref.kind} {ref.blob_id}"
    try:
        try:
            # Where it was stored: the key may have been named after what the server served.
            stored = sink.stat_location(location) if location else sink.stat(ref, record)
        except NotImplementedError:
            stored = sink.stat(ref, record)
    except NotImplementedError:
        return _BlobCheck()
    except RcetlError as exc:
        return _BlobCheck(("missing-file", f"{what}: cannot check: {redact(exc.message)}"))
    if stored is None:
        return _BlobCheck(("missing-file", f"{what} is not in the sink"))
    if expected_size is not None and stored.size != expected_size:
        return _BlobCheck(("mismatch", f"{what}: {stored.size} bytes stored, {expected_size} archived"))
    if expected_sha and stored.sha256 and stored.sha256 != expected_sha:
        return _BlobCheck(("mismatch", f"{what}: SHA-256 differs from the archived one"))
    if not (rehash or (rehash is None and sink.rehash_is_cheap)):
        return _BlobCheck()
    try:
        size, digest, evidence = _read_back(sink, stored.location)
    except (NotImplementedError, OSError, RcetlError) as exc:
        return _BlobCheck(("missing-file", f"{what}: cannot read back: {redact(str(exc))}"))
    if expected_sha and digest != expected_sha:
        return _BlobCheck(("mismatch", f"{what}: stored bytes hash differently (corrupted)"))
    verdict = check_content(ref, evidence)
    if not verdict.ok:
        return _BlobCheck(("content", verdict.message(f"{what} at {stored.location}")
                           + "; the next run downloads it again and replaces it"))
    return _BlobCheck(read_back=True)


def _read_back(sink: BlobSink, location: str) -> tuple[int, str, Any]:
    """Size, SHA-256 and content-check evidence of stored bytes, in one streaming read."""
    digest, recorder = hashlib.sha256(), EvidenceRecorder()
    with sink.open_stored(location) as fh:
        for chunk in iter(lambda: fh.read(READ_CHUNK), b""):
            digest.update(chunk)
            recorder.update(chunk)
    return recorder.size, digest.hexdigest(), recorder.evidence()


def _shared_binaries(held_by_stream: dict[str, dict[str, dict[tuple[str, str], Any]]], report: VerifyReport) -> None:
    """Two items pointing at one stored binary are fine only when each was downloaded on its own
    (its own blob id) and hashed the same; one blob id (one download) standing for several items,
    or different checksums at one location, means some item's own bytes were never stored."""
    at: dict[tuple[str, str], dict[ItemId, tuple[str, str, Any]]] = defaultdict(dict)
    for stream_name, by_sink in held_by_stream.items():
        for entries in by_sink.values():
            for k, entry in entries.items():
                for blob in entry.archive or []:
                    if blob.get("status") != "stored":
                        continue
                    for sink_name, location in (blob.get("locations") or {}).items():
                        owner: ItemId = (stream_name, *k)
                        at[(sink_name, location)][owner] = (
                            str(blob.get("blob_id")), str(blob.get("sha256")), entry.key)
    flagged: set[tuple[ItemId, str]] = set()
    for (sink_name, location), owners in at.items():
        if len(owners) < 2:
            continue
        blob_ids = {b for b, _, _ in owners.values()}
        shas = {s for _, s, _ in owners.values()}
        if len(blob_ids) == len(owners) and len(shas) == 1:
            continue  # separately downloaded, identical bytes: one copy serves them all
        for item, (blob_id, _sha, key) in owners.items():
            if (item, sink_name) in flagged:
                continue
            flagged.add((item, sink_name))
            others = sorted(repr(o[2]) for i, o in owners.items() if i != item)
            report.findings.append(Finding(
                "shared", item[0], item[1], key, sink_name,
                f"{blob_id} at {location} is also what {len(others)} other item(s) point at ({', '.join(others[:3])}"
                f"{', ...' if len(others) > 3 else ''}); one download stands for all, so their own bytes may never "
                "have been stored"))
            report.verified.pop(item, None)


def _deleted_at_source(window: RunWindow, source: dict, held_by_stream: dict, report: VerifyReport) -> None:
    """Records the archive holds as live that the source no longer lists (deleted there since they
    were archived). Only for a verify over the sources' whole default range: a narrower range would
    call everything outside it deleted."""
    if window.since or window.until:
        return
    for stream_name, by_sink in held_by_stream.items():
        listed = source.get(stream_name, {})
        seen: set[tuple[str, str]] = set()
        for entries in by_sink.values():
            for k, entry in entries.items():
                if k in listed or k in seen or entry.deleted:
                    continue
                seen.add(k)
                report.streams[stream_name].deleted_at_source += 1
                report.findings.append(Finding(
                    "deleted-at-source", stream_name, entry.account, entry.key, "",
                    "held as live by the archive, no longer listed by the source (deleted there, or past its "
                    "retention); the next run marks it deleted"))


def _deep(opened: OpenedPipeline, report: VerifyReport, streams: dict[ItemId, tuple[Stream, tuple[str, str]]],
          samples: list[tuple[ItemId, BlobRef, dict]], n: int, seed: int | None) -> set[ItemId]:
    """Download ``n`` binaries again and compare with the record and every sink: the check that a
    file swapped for another (with a checksum record to match) cannot pass."""
    rng = random.Random(seed)
    chosen = rng.sample(samples, min(n, len(samples)))
    passed: set[ItemId] = set()
    failed: set[ItemId] = set()
    for item, ref, archived in chosen:
        stream = streams[item][0]
        report.deep[item[0]] = report.deep.get(item[0], 0) + 1
        record = report.source[item]
        spool = HashingSpool(opened.spool_dir)
        try:
            try:
                stream.download(ref, spool)
            except ItemGone as exc:
                report.findings.append(Finding("deep-skipped", item[0], record.account, record.key, "",
                                               f"{ref.kind} {ref.blob_id} is gone at the source: {exc.message}"))
                continue
            except RcetlError as exc:
                report.findings.append(Finding("deep-skipped", item[0], record.account, record.key, "",
                                               f"{ref.kind} {ref.blob_id} could not be downloaded: {redact(exc.message)}"))
                continue
            fresh = spool.finish(ref, record)
        finally:
            spool.discard()
        problems = []
        if fresh.sha256 != archived.get("sha256"):
            problems.append(("", f"{ref.kind} {ref.blob_id}: the source's bytes (SHA-256 {fresh.sha256[:16]}..., "
                                 f"{fresh.size} bytes) are not the archived ones ({str(archived.get('sha256'))[:16]}..., "
                                 f"{archived.get('size')} bytes)"))
        for sink_name, location in (archived.get("locations") or {}).items():
            sink = opened.sinks.get(sink_name)
            if not isinstance(sink, BlobSink):
                continue
            try:
                _, digest, _ = _read_back(sink, location)
            except (NotImplementedError, OSError, RcetlError) as exc:
                problems.append((sink_name, f"{ref.kind} {ref.blob_id}: cannot read back {location}: {redact(str(exc))}"))
                continue
            if digest != fresh.sha256:
                problems.append((sink_name, f"{ref.kind} {ref.blob_id}: {location} holds other bytes than the source "
                                            "serves (a swapped or replaced file)"))
        for sink_name, detail in problems:
            report.findings.append(Finding("deep-mismatch", item[0], record.account, record.key, sink_name, detail))
        (failed if problems else passed).add(item)
    for item in failed:
        report.verified.pop(item, None)
    return passed - failed


def deep_plan(samples: int, binaries: dict[str, int]) -> str:
    """What ``--deep`` will spend, for ``--dry-run``."""
    per = ", ".join(f"{s}: {n}" for s, n in sorted(binaries.items()))
    return (f"--deep {samples}: re-downloads up to {samples} of {sum(binaries.values())} stored binaries ({per}), "
            "one download request each, in the stream's download group of the shared budget")


def _queue_repairs(opened: OpenedPipeline, report: VerifyReport, streams: dict, repairs: list[tuple[ItemId, str]]) -> None:
    """Items whose stored bytes fail the content check go to the failed-item queue: the next run
    downloads them again and the blob sinks replace the bad bytes (see ObjectStoreSink)."""
    for item, detail in repairs:
        record = report.source[item]
        _, (connection, source) = streams[item]
        opened.state.add_failed(opened.pipeline.name, record.stream, record.account, record.key,
                                {"record": record.to_json(), "connection": connection, "source": source},
                                f"verify: {detail}")


def _archived_locations(held_by_stream: dict, sink_name: str) -> dict[str, tuple[str, str]]:
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
    """Every (location, blob_id or None) the sink holds, sidecars and manifests left out. Blob ids
    come from the sink's ``iter_stored`` (its sidecars and manifests); every key comes from an
    object store's ``_list``, so a bare copy without a sidecar is listed too. Raises
    NotImplementedError when the sink cannot be listed at all."""
    ids: dict[str, str] = {}
    try:
        ids = dict(sink.iter_stored())
    except NotImplementedError:
        pass
    keys: list[str] | None = None
    if isinstance(sink, ObjectStoreSink):
        try:
            keys = [sink.location(k) for k in sink._guarded(lambda: list(sink._list()), "listing the store")
                    if not sink.is_manifest(k)]
        except NotImplementedError:
            keys = None
    if keys is None:
        if ids:
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
    """Objects no record points at: a second copy of an archived binary (``duplicate``: a sidecar
    naming a blob id some record archives elsewhere, or bytes hashing like an archived binary), one
    written under a blob id no record names any more (``superseded``: an older identity's file, left
    in place by the run that re-archived its records), or anything else (``stray``)."""
    try:
        listed = list(_listed_objects(sink))
    except NotImplementedError:
        report.findings.append(Finding("unlisted", "", "", "", name,
                                       "this sink cannot list its objects: copies under other keys are not looked for"))
        return
    by_sha = {sha: blob_id for blob_id, sha in archived.values() if sha}
    archived_ids = {blob_id for blob_id, _ in archived.values()}
    seen: Counter[str] = Counter()
    for location, blob_id in listed:
        if location in archived:
            seen[archived[location][0]] += 1
            continue
        if blob_id is not None and blob_id not in archived_ids:
            report.findings.append(Finding("superseded", "", "", location, name,
                                           f"written as {blob_id}, which no archived record names now (an older "
                                           "identity): no record points at it; safe to delete"))
            continue
        if blob_id is None and by_sha:
            try:
                size_sha = _read_back(sink, location)
                blob_id = by_sha.get(size_sha[1])
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
