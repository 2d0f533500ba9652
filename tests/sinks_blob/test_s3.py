"""S3 specifics against moto's server: create-only writes, options on the wire, error mapping."""

from __future__ import annotations

import socket

import pytest

import rcetl

from .conftest import BlobMaker, build_sink, make_sink

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_backend(request):
    from .conftest import _s3

    yield from _s3(request)


def test_storage_class_encryption_and_object_lock_reach_s3(s3_backend, ctx, blobs: BlobMaker) -> None:
    sink = make_sink(
        s3_backend,
        ctx,
        storage_class="STANDARD_IA",
        sse="AES256",
        object_lock_mode="GOVERNANCE",
        object_lock_days=1,
        legal_hold=True,
    )
    stored = sink.store(blobs(b"held"))
    head = sink.client.head_object(Bucket=sink.config.bucket, Key=sink.key_of(stored.location))
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockLegalHoldStatus"] == "ON"


def test_missing_bucket_is_a_config_error_with_a_hint(s3_backend, ctx) -> None:
    with pytest.raises(rcetl.ConfigError, match="does not exist") as err:
        make_sink(s3_backend, ctx, create_bucket=False)
    assert "create_bucket" in (err.value.hint or "")


def test_unreachable_endpoint_is_transient(s3_backend, ctx, blobs: BlobMaker) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    options = {**s3_backend.options, "endpoint_url": f"http://127.0.0.1:{port}", "max_attempts": 1}
    sink = build_sink(s3_backend.sink_class, "s3", options, ctx)
    with pytest.raises(rcetl.TransientError, match="unreachable"):
        sink.store(blobs(b"x"))


def test_config_validation() -> None:
    from rcetl.plugins.sinks.s3 import S3Config

    with pytest.raises(ValueError, match="go together"):
        S3Config(bucket="bkt", object_lock_mode="COMPLIANCE")
    with pytest.raises(ValueError, match="minimum part size"):
        S3Config(bucket="bkt", multipart_chunksize=1024)
    with pytest.raises(ValueError):
        S3Config(bucket="bkt", streams=["x"])
