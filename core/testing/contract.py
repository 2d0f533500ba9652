"""The contract suite: the behaviours every sink must have, as test classes a sink author subclasses.

Modelled on Singer SDK's standard tests::

    from rcetl.testing import RecordSinkContract

    class TestMySink(RecordSinkContract):
        plugin = "mysink"                 # the name the package registers
        config = {"path": "archive"}      # options as in a pipeline file; paths are relative to tmp_path
        bad_configs = [{"path": ""}]      # options that must be refused with a clear error

``BlobSinkContract`` is the same for blob sinks, ``SinkContract`` for a sink that is both. To test
several configurations (the project tests every built-in sink this way), override the ``sink_case``
fixture with a parametrised one. Reading back uses the public interface (``RecordSink.archived``,
``BlobSink.open_stored``/``stat``); override ``stored_entries``, ``stored_data`` or ``read_blob``
where a sink needs another way.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from ..errors import ConflictError, IntegrityError, RcetlError
from ..interfaces import ArchivedEntry, BlobSink, RecordSink
from ..records import Record, SpooledBlob, StoredBlob
from .dataset import ContractDataset, load_dataset
from .harness import SinkCase, SinkHarness

_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


class SimulatedCrash(Exception):
    """Raised from inside a batch to interrupt a sink's ``write`` part-way, like a killed process."""


class _InterruptedBatch(Sequence):
    """A batch whose item ``fail_at`` cannot be read: the write stops in the middle."""

    def __init__(self, items: list[Any], fail_at: int) -> None:
        self.items, self.fail_at = items, fail_at

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index >= self.fail_at:
            raise SimulatedCrash(f"interrupted at item {self.fail_at}")
        return self.items[index]

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]


class _SinkContractBase:
    """What both contracts share: which sink, its options, and the refusal of bad options."""

    #: the sink's plugin name, as in ``plugin:`` of a pipeline file
    plugin: ClassVar[str] = ""
    #: the sink's options; relative paths resolve against each test's temporary folder
    config: ClassVar[dict[str, Any]] = {}
    #: options that must be refused (by validation, ``open`` or ``check``) with an rcetl error
    bad_configs: ClassVar[list[dict[str, Any]]] = []
    #: plugin objects (modules) to register when the sink's package is not installed
    plugins: ClassVar[Sequence[Any]] = ()

    @pytest.fixture
    def sink_case(self) -> SinkCase:
        """Which sink and options; override with a parametrised fixture to test several."""
        if not self.plugin:
            pytest.fail(f"{type(self).__name__}: set `plugin = '<your sink name>'` on the test class")
        return SinkCase(self.plugin, dict(self.config), tuple(self.plugins))

    @pytest.fixture
    def harness(self, sink_case: SinkCase, tmp_path: Path) -> Iterator[SinkHarness]:
        h = SinkHarness(sink_case, tmp_path)
        try:
            yield h
        finally:
            h.close_all()

    @pytest.fixture
    def dataset(self, harness: SinkHarness) -> ContractDataset:
        """The contract data set, limited to the streams the sink takes."""
        data = load_dataset()
        supported = harness.sink_class.supported_streams
        if supported is not None:
            data.records = [r for r in data.records if r.stream in supported]
        return data

    # --- options ------------------------------------------------------------------------------

    def test_options_are_valid(self, harness: SinkHarness) -> None:
        harness.validate()

    def test_unknown_option_is_refused_by_name(self, harness: SinkHarness) -> None:
        with pytest.raises(ValidationError) as info:
            harness.validate({**harness.case.config, "no_such_option_xyz": 1})
        assert "no_such_option_xyz" in str(info.value), "the error must name the unknown option"

    def test_bad_options_are_refused_clearly(self, harness: SinkHarness) -> None:
        for options in self.bad_configs:
            try:
                sink = harness.new_sink(options, open_it=False)
                sink.open()
                sink.check()
            except ValidationError as exc:
                assert exc.errors(), options
                continue
            except RcetlError as exc:
                assert exc.message.strip(), f"{options}: {type(exc).__name__} with an empty message"
                continue
            except Exception as exc:  # noqa: BLE001
                pytest.fail(f"options {options!r} raised {type(exc).__name__}: {exc}; a sink must refuse bad "
                            "options with a validation error or rcetl.ConfigError (with a hint)")
            pytest.fail(f"options {options!r} were accepted; they must be refused by validation, open() or check()")


class RecordSinkContract(_SinkContractBase):
    """Every record sink: idempotent upserts, exact ids, durable on return, resume, hostile values."""

    # --- reading back (override for a sink whose ``archived`` is not enough) ---------------------

    def stored_entries(self, sink: RecordSink, stream: str) -> list[ArchivedEntry]:
        try:
            return list(sink.archived(stream))
        except NotImplementedError:
            pytest.fail(f"{type(sink).__name__}.archived() is not implemented: implement it (rcetl verify needs "
                        "it) or override `stored_entries` in your test class")
        raise AssertionError("unreachable")

    def stored_data(self, sink: RecordSink, record: Record) -> dict[str, Any] | None:
        """The record's JSON as stored, or None when the sink cannot say (the check is skipped)."""
        return None

    def _keys(self, sink: RecordSink, streams: list[str]) -> Counter:
        return Counter((e.stream, e.account, type(e.key).__name__, e.key)
                       for s in streams for e in self.stored_entries(sink, s) for _ in range(max(e.copies, 1)))

    @staticmethod
    def _expected(records: list[Record]) -> Counter:
        return Counter({(r.stream, r.account, type(r.key).__name__, r.key): 1 for r in records})

    # --- behaviours ---------------------------------------------------------------------------

    def test_declares_records(self, harness: SinkHarness) -> None:
        assert "records" in harness.kinds, f"the sink class of {harness.case} is not an rcetl.RecordSink"
        harness.record_sink()

    def test_every_stream_is_stored_and_read_back(self, harness: SinkHarness, dataset: ContractDataset) -> None:
        sink = harness.record_sink()
        sink.write(harness.archived(dataset.records, dataset.blobs))
        assert self._keys(sink, dataset.streams()) == self._expected(dataset.records)

    def test_empty_batch_is_a_no_op(self, harness: SinkHarness, dataset: ContractDataset) -> None:
        sink = harness.record_sink()
        sink.write([])
        assert self._keys(sink, dataset.streams()) == Counter()

    def test_rewrites_are_idempotent_upserts(self, harness: SinkHarness, dataset: ContractDataset) -> None:
        sink = harness.record_sink()
        batch = harness.archived(dataset.records, dataset.blobs)
        sink.write(batch)
        sink.write(batch)  # at-least-once delivery: the same batch again
        half = len(batch) // 2
        sink.write(batch[half:] + batch[:half])  # and again, cut differently
        assert self._keys(sink, dataset.streams()) == self._expected(dataset.records)

    def test_a_later_version_replaces_the_earlier(self, harness: SinkHarness, dataset: ContractDataset) -> None:
        sink = harness.record_sink()
        first = [r for r in dataset.records if not r.deleted][:6]
        sink.write(harness.archived(first, dataset.blobs))
        changed = [Record(r.stream, r.key, {**r.data, "availability": "Deleted"}, r.account, list(r.blobs),
                          True, r.occurred_at) for r in first]
        sink.write(harness.archived(changed, dataset.blobs))
        entries = {(e.stream, e.account, e.key): e for s in dataset.streams() for e in self.stored_entries(sink, s)}
        for r in changed:
            entry = entries[(r.stream, r.account, r.key)]
            assert entry.deleted, f"{r.stream} {r.key!r}: the later write (deleted) did not replace the earlier"
            assert entry.copies == 1
            data = self.stored_data(sink, r)
            if data is not None:
                assert data.get("availability") == "Deleted"

    def test_ids_above_2_53_stay_exact(self, harness: SinkHarness, dataset: ContractDataset) -> None:
        records = dataset.exact_id_records()
        if not records:
            pytest.skip("the sink takes no stream with integer ids")
        sink = harness.record_sink()
        sink.write(harness.archived(records, dataset.blobs))
        stored = {e.key for s in {r.stream for r in records} for e in self.stored_entries(sink, s)}
        for r in records:
            assert r.key in stored and any(type(k) is int and k == r.key for k in stored), \
                f"id {r.key} came back as {sorted(stored, key=repr)!r}: 64-bit ids must stay exact ints"
            data = self.stored_data(sink, r)
            if data is not None:
                assert type(data["id"]) is int and data["id"] == r.key, data.get("id")
                assert data["conversationId"] == r.data["conversationId"]

    def test_hostile_keys_and_values_round_trip(self, harness: SinkHarness, dataset: ContractDataset) -> None:
        records = dataset.hostile_records()
        if not records:
            pytest.skip("the sink takes no stream the hostile records belong to")
        sink = harness.record_sink()
        sink.write(harness.archived(records, dataset.blobs))
        assert self._keys(sink, sorted({r.stream for r in records})) == self._expected(records)
        for r in records:
            data = self.stored_data(sink, r)
            if data is not None:
                assert data == r.data, f"{r.stream} {r.key!r} changed on the way"

    def test_writes_are_durable_on_return(self, harness: SinkHarness, dataset: ContractDataset) -> None:
        writer = harness.record_sink()
        writer.write(harness.archived(dataset.records, dataset.blobs))
        reader = harness.record_sink()  # another instance (another process) sees them, writer still open
        assert self._keys(reader, dataset.streams()) == self._expected(dataset.records)

    def test_resume_after_an_interrupted_batch(self, harness: SinkHarness, dataset: ContractDataset) -> None:
        batch = harness.archived(dataset.records, dataset.blobs)
        crashed = harness.record_sink()
        crashed.write(batch[:3])  # an earlier batch, committed
        with pytest.raises(Exception):  # noqa: B017 - whatever the sink turns the crash into
            crashed.write(_InterruptedBatch(batch[3:], fail_at=len(batch[3:]) // 2))
        # The process died; the engine never moved the checkpoint, so the next run delivers it all again.
        resumed = harness.record_sink()
        resumed.write(batch)
        assert self._keys(resumed, dataset.streams()) == self._expected(dataset.records)


class BlobSinkContract(_SinkContractBase):
    """Every blob sink: stored once, checksums verified, no silent overwrite, names made safe."""

    def read_blob(self, sink: BlobSink, stored: StoredBlob) -> bytes:
        try:
            with sink.open_stored(stored.location) as fh:
                return fh.read()
        except NotImplementedError:
            pytest.fail(f"{type(sink).__name__}.open_stored() is not implemented: implement it (rcetl verify "
                        "--rehash needs it) or override `read_blob` in your test class")
        raise AssertionError("unreachable")

    def _spooled(self, harness: SinkHarness, dataset: ContractDataset, records: list[Record] | None = None
                 ) -> list[tuple[SpooledBlob, bytes]]:
        seen, out = set(), []
        for rec in records if records is not None else dataset.with_blobs():
            for ref in rec.blobs:
                if ref.blob_id not in seen:
                    seen.add(ref.blob_id)
                    data = dataset.blobs[ref.blob_id]
                    out.append((harness.spool(ref, data, rec), data))
        return out

    def test_declares_blobs(self, harness: SinkHarness) -> None:
        assert "blobs" in harness.kinds, f"the sink class of {harness.case} is not an rcetl.BlobSink"
        harness.blob_sink()

    def test_every_binary_is_stored_with_a_matching_checksum(self, harness: SinkHarness,
                                                             dataset: ContractDataset) -> None:
        sink = harness.blob_sink()
        pairs = self._spooled(harness, dataset)
        locations = set()
        for blob, data in pairs:
            stored = sink.store(blob)
            assert stored.sha256 == hashlib.sha256(data).hexdigest() and stored.size == len(data)
            assert not stored.skipped, f"{blob.ref.blob_id} reported as already present in an empty sink"
            assert self.read_blob(sink, stored) == data
            locations.add(stored.location)
        assert len(locations) == len(pairs), \
            "two different binaries were given the same location"

    def test_a_binary_is_stored_once(self, harness: SinkHarness, dataset: ContractDataset) -> None:
        pairs = self._spooled(harness, dataset)[:8]
        sink = harness.blob_sink()
        first = {b.ref.blob_id: sink.store(b) for b, _ in pairs}
        again = harness.blob_sink()  # a later run
        for blob, data in pairs:
            stored = again.store(blob)
            assert stored.skipped, f"{blob.ref.blob_id} was uploaded again: a re-run must find it present"
            assert stored.location == first[blob.ref.blob_id].location
            assert stored.sha256 == first[blob.ref.blob_id].sha256
            found = again.stat(blob.ref, blob.record) if _implements(again, "stat") else None
            if found is not None:
                assert found.sha256 in ("", blob.sha256) and found.size == len(data)

    def test_different_bytes_never_silently_replace_a_binary(self, harness: SinkHarness,
                                                             dataset: ContractDataset) -> None:
        sink = harness.blob_sink()
        (blob, data), = self._spooled(harness, dataset)[:1]
        stored = sink.store(blob)
        impostor = harness.spool(blob.ref, data[::-1] + b"!", blob.record)
        try:
            other = sink.store(impostor)
        except ConflictError:
            pass
        else:
            assert other.location != stored.location, "different bytes were written over a stored binary"
        assert self.read_blob(sink, stored) == data

    def test_a_corrupt_spool_is_refused_and_leaves_nothing(self, harness: SinkHarness,
                                                           dataset: ContractDataset) -> None:
        sink = harness.blob_sink()
        (blob, data), = self._spooled(harness, dataset)[:1]
        corrupt = harness.spool(blob.ref, data, blob.record, claimed_sha256=hashlib.sha256(b"other").hexdigest())
        with pytest.raises(IntegrityError):
            sink.store(corrupt)
        if _implements(sink, "stat"):
            assert sink.stat(blob.ref, blob.record) is None, "a refused binary must not be left behind"
        # The item is retried on a later run (an interrupted upload resumes the same way): it stores cleanly.
        stored = harness.blob_sink().store(blob)
        assert not stored.skipped and stored.sha256 == blob.sha256
        assert self.read_blob(sink, stored) == data

    def test_hostile_names_are_made_safe(self, harness: SinkHarness, dataset: ContractDataset,
                                         tmp_path: Path) -> None:
        hostile = [r for r in dataset.hostile_records() if r.blobs]
        if not hostile:
            pytest.skip("no hostile binaries for the streams this sink takes")
        sink = harness.blob_sink()
        for blob, data in self._spooled(harness, dataset, hostile):
            stored = sink.store(blob)
            loc = stored.location
            assert not _UNSAFE.search(loc), f"control or bidi characters in {loc!r}"
            assert ".." not in re.split(r"[/\\]", loc.split("://", 1)[-1]), f"'..' segment in {loc!r}"
            if os.path.isabs(loc):  # a local archive: the file is inside the test's folder
                assert os.path.realpath(loc).startswith(os.path.realpath(tmp_path) + os.sep), loc
            assert self.read_blob(sink, stored) == data

    def test_concurrent_stores_of_one_binary_agree(self, harness: SinkHarness, dataset: ContractDataset) -> None:
        sink = harness.blob_sink()
        (blob, data), = self._spooled(harness, dataset)[:1]
        results: list[Any] = []

        def store() -> None:
            try:
                results.append(sink.store(harness.spool(blob.ref, data, blob.record)))
            except Exception as exc:  # noqa: BLE001
                results.append(exc)

        threads = [threading.Thread(target=store) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        errors = [r for r in results if isinstance(r, Exception)]
        assert not errors, f"concurrent stores of the same bytes failed: {errors!r}"
        assert len({r.location for r in results}) == 1
        assert self.read_blob(sink, results[0]) == data


class SinkContract(RecordSinkContract, BlobSinkContract):
    """A sink that stores both records and binaries passes both contracts."""


def _implements(sink: Any, method: str) -> bool:
    """Whether ``sink`` overrides an optional method of the interface (``stat``, ``open_stored``)."""
    base = BlobSink if isinstance(sink, BlobSink) else RecordSink
    return getattr(type(sink), method, None) is not getattr(base, method, None)
