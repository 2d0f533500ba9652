"""S3 requests per binary against moto's server: a new binary costs one create-only PUT (whose
answer carries S3's SHA-256: no transfer manager, no HEAD before or after) and its batch one PUT of
its manifest (``sidecar: batch``, the default), or two PUTs with ``sidecar: true`` (its sidecar,
then the file); a key already taken is found by S3's 412 and judged by a look-up."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from .conftest import BlobMaker, make_sink

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_backend(request):
    from .conftest import _s3

    yield from _s3(request)


def _count_calls(sink) -> Counter[str]:
    calls: Counter[str] = Counter()
    sink.client.meta.events.register("after-call.s3", lambda model, **_: calls.update([model.name]))
    return calls


def test_a_new_binary_costs_one_create_only_put_and_its_batch_one_more(s3_backend, ctx, blobs: BlobMaker) -> None:
    """The default (``sidecar: batch``): a new key needs no HEAD and no sidecar of its own; the
    batch's binaries are described by one manifest PUT at sync()."""
    sink = make_sink(s3_backend, ctx)
    calls = _count_calls(sink)
    stored = [sink.store(blobs(b"ID3 recording %d" % i, blob_id=f"rec-{i}")) for i in range(5)]
    assert calls == Counter({"PutObject": 5})
    sink.sync()
    assert calls == Counter({"PutObject": 6})
    head = sink.client.head_object(Bucket=sink.config.bucket, Key=sink.key_of(stored[0].location))
    assert head["Metadata"]["sha256"] == stored[0].sha256
    (manifest,) = [k for k in sink._list() if sink.is_manifest(k)]
    body = sink.client.get_object(Bucket=sink.config.bucket, Key=manifest)["Body"].read()
    assert [json.loads(line)["blob"]["sha256"] for line in body.splitlines()] == [s.sha256 for s in stored]


def test_a_new_binary_costs_two_create_only_puts_and_no_lookup(s3_backend, ctx, blobs: BlobMaker) -> None:
    """``sidecar: true``: a new key (nearly every binary a run stores: the ledger skips archived
    ones) needs no HEAD: the sidecar and then the binary are created only if absent, so a taken key
    is found by S3's 412 and judged by the look-up path."""
    sink = make_sink(s3_backend, ctx, sidecar=True)
    calls = _count_calls(sink)
    stored = sink.store(blobs(b"ID3 a new recording"))
    assert calls == Counter({"PutObject": 2})
    key = sink.key_of(stored.location)
    head = sink.client.head_object(Bucket=sink.config.bucket, Key=key)
    assert head["Metadata"]["sha256"] == stored.sha256 and not stored.skipped
    side = sink.client.get_object(Bucket=sink.config.bucket, Key=key + ".json")["Body"].read()
    assert stored.sha256.encode() in side


@pytest.mark.parametrize("sidecar", ["batch", True])
def test_a_stored_binary_is_skipped_after_its_refused_put(s3_backend, ctx, blobs: BlobMaker, sidecar) -> None:
    sink = make_sink(s3_backend, ctx, sidecar=sidecar)
    first = sink.store(blobs(b"ID3 stored once"))
    calls = _count_calls(sink)
    again = sink.store(blobs(b"ID3 stored once"))
    assert again.skipped and again.location == first.location
    # the first create-only PUT (the binary's; with sidecar: true its sidecar's) refused (412, nothing
    # written), then the look-up that finds the same bytes
    assert calls == Counter({"PutObject": 1, "HeadObject": 1})


def test_a_binary_stored_without_sidecar_gets_one_and_is_skipped(s3_backend, ctx, blobs: BlobMaker) -> None:
    bare = make_sink(s3_backend, ctx, sidecar=False)
    first = bare.store(blobs(b"ID3 no sidecar yet"))
    sink = make_sink(s3_backend, ctx, sidecar=True)
    again = sink.store(blobs(b"ID3 no sidecar yet"))
    assert again.skipped and again.location == first.location
    side = sink.client.get_object(Bucket=sink.config.bucket, Key=sink.key_of(first.location) + ".json")
    assert first.sha256.encode() in side["Body"].read()


def test_other_bytes_without_sidecar_stay_and_get_no_sidecar_of_ours(s3_backend, ctx, blobs: BlobMaker) -> None:
    import rcetl

    bare = make_sink(s3_backend, ctx, sidecar=False)
    first = bare.store(blobs(b"ID3 theirs"))
    sink = make_sink(s3_backend, ctx)
    with pytest.raises(rcetl.ConflictError):
        sink.store(blobs(b"ID3 ours, different"))
    key = sink.key_of(first.location)
    assert sink.client.get_object(Bucket=sink.config.bucket, Key=key)["Body"].read() == b"ID3 theirs"
    listed = sink.client.list_objects_v2(Bucket=sink.config.bucket).get("Contents") or []
    assert [o["Key"] for o in listed] == [key]


def test_a_sidecar_left_without_its_binary_is_replaced(s3_backend, ctx, blobs: BlobMaker) -> None:
    """A run killed between the sidecar and the binary: the next store writes both."""
    sink = make_sink(s3_backend, ctx, sidecar=True)
    blob = blobs(b"ID3 after a crash")
    key = sink.key_for(blob.ref, blob.record)
    sink.client.put_object(Bucket=sink.config.bucket, Key=key + ".json", Body=b'{"stale": true}')
    stored = sink.store(blob)
    assert not stored.skipped
    side = sink.client.get_object(Bucket=sink.config.bucket, Key=key + ".json")["Body"].read()
    assert blob.sha256.encode() in side and b"stale" not in side


def test_a_small_binary_goes_up_without_waiting_for_100_continue(s3_backend, ctx, blobs: BlobMaker) -> None:
    """botocore asks the server for ``100 Continue`` before sending a PUT's body (a round trip more
    per PUT); a small body (a sidecar, a small binary) is sent at once."""
    sink = make_sink(s3_backend, ctx, sidecar=True)
    expects: list[str | None] = []
    sink.client.meta.events.register("before-send.s3.PutObject",
                                     lambda request, **_: expects.append(request.headers.get("Expect")))
    sink.store(blobs(b"ID3" + b"\x00" * 100_000))
    assert expects == [None, None]  # the sidecar, the binary
