"""S3 requests per binary against moto's server: a file below the multipart threshold goes up in
one create-only PUT whose answer carries S3's SHA-256 (no transfer manager, no HEAD afterwards)."""

from __future__ import annotations

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


def test_a_small_binary_costs_one_lookup_and_two_puts(s3_backend, ctx, blobs: BlobMaker) -> None:
    sink = make_sink(s3_backend, ctx)
    calls = _count_calls(sink)
    stored = sink.store(blobs(b"ID3 a short recording"))
    assert calls == Counter({"HeadObject": 1, "PutObject": 2})  # the lookup, the sidecar, the binary
    head = sink.client.head_object(Bucket=sink.config.bucket, Key=sink.key_of(stored.location))
    assert head["Metadata"]["sha256"] == stored.sha256 and head["ContentType"] == "audio/mpeg"
    calls.clear()
    assert sink.store(blobs(b"ID3 a short recording")).skipped
    assert calls == Counter({"HeadObject": 1})

