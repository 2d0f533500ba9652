"""GCS specifics against fake-gcs-server: options on the wire, error mapping."""

from __future__ import annotations

import pytest

import rcetl

from .conftest import BlobMaker, build_sink, make_sink

pytestmark = pytest.mark.integration


@pytest.fixture
def gcs_backend(request):
    from .conftest import _gcs

    yield from _gcs(request)


def test_storage_class_and_metadata_reach_gcs(gcs_backend, ctx, blobs: BlobMaker) -> None:
    sink = make_sink(gcs_backend, ctx, storage_class="COLDLINE")
    blob = blobs(b"cold")
    stored = sink.store(blob)
    obj = sink.bucket.get_blob(sink.key_of(stored.location))
    assert obj.storage_class == "COLDLINE"
    assert obj.metadata["sha256"] == blob.sha256
    assert stored.location.startswith(f"gs://{gcs_backend.options['bucket']}/")


def test_missing_bucket_is_a_config_error_with_a_hint(gcs_backend, ctx) -> None:
    with pytest.raises(rcetl.ConfigError, match="does not exist") as err:
        make_sink(gcs_backend, ctx, create_bucket=False)
    assert "create_bucket" in (err.value.hint or "")


def test_unreachable_emulator_is_transient(gcs_backend, ctx, blobs: BlobMaker) -> None:
    from tests.servers import free_port

    options = {
        **gcs_backend.options,
        "emulator_host": f"http://127.0.0.1:{free_port()}",
        "timeout": 2,
        "retry_deadline": 0.5,
    }
    sink = build_sink(gcs_backend.sink_class, "gcs", options, ctx)
    with pytest.raises(rcetl.TransientError):
        sink.store(blobs(b"x"))


def test_chunk_size_must_be_a_multiple_of_256_kib() -> None:
    from rcetl.plugins.sinks.gcs import GCSConfig

    with pytest.raises(ValueError, match="256 KiB"):
        GCSConfig(bucket="b", chunk_size=1000)
