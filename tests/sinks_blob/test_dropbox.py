"""Dropbox specifics against our HTTPS fake: auth, content hash, faults on the store's side."""

from __future__ import annotations

import os

import pytest

import rcetl
from rcetl.plugins.sinks.dropbox import ContentHasher, content_hash

from .conftest import BlobMaker, build_sink, make_sink
from .fakes.dropbox_server import content_hash as reference_hash

pytestmark = pytest.mark.integration


@pytest.fixture
def dropbox_backend(request):
    from .conftest import _dropbox

    yield from _dropbox(request)


@pytest.mark.parametrize("size", [0, 1, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1, 9 * 1024 * 1024 + 7])
def test_content_hash_matches_the_reference_across_block_boundaries(size) -> None:
    data = os.urandom(size)
    hasher = ContentHasher()
    for i in range(0, size, 1_000_003):  # feed in pieces that straddle 4 MiB blocks
        hasher.update(data[i : i + 1_000_003])
    assert hasher.hexdigest() == content_hash(data) == reference_hash(data)


def test_refresh_token_auth(dropbox_backend, ctx, blobs: BlobMaker) -> None:
    options = {k: v for k, v in dropbox_backend.options.items() if k != "access_token"}
    options.update(refresh_token="test-refresh", app_key="app-key", app_secret="app-secret")
    sink = build_sink(dropbox_backend.sink_class, "dropbox", options, ctx)
    sink.open()
    assert not sink.store(blobs(b"voicemail")).skipped


def test_bad_token_is_permanent_with_a_hint(dropbox_backend, ctx, blobs: BlobMaker) -> None:
    sink = make_sink(dropbox_backend, ctx, access_token="revoked")
    with pytest.raises(rcetl.PermanentError) as err:
        sink.store(blobs(b"x"))
    assert "refresh token" in (err.value.hint or "")


def test_service_unavailable_is_transient(dropbox_backend, dropbox_fake, ctx, blobs: BlobMaker) -> None:
    fake = dropbox_fake[0]
    sink = make_sink(dropbox_backend, ctx, max_retries=1)
    fake.fail_next = 10  # more than the SDK's own retries
    try:
        with pytest.raises(rcetl.TransientError):
            sink.store(blobs(b"x"))
    finally:
        fake.fail_next = 0


@pytest.mark.parametrize("size", ["small", "session"])
def test_bytes_altered_by_the_store_are_detected(
    dropbox_backend, dropbox_fake, ctx, blobs: BlobMaker, size
) -> None:
    """The fake stores one byte flipped and reports the content hash of what it stored."""
    fake = dropbox_fake[0]
    sink = make_sink(dropbox_backend, ctx, **(dropbox_backend.large_options if size == "session" else {}))
    blob = blobs(b"\x05" * ((3 << 20) if size == "session" else 1000))
    fake.corrupt_uploads = True
    try:
        with pytest.raises(rcetl.IntegrityError, match="content_hash mismatch"):
            sink.store(blob)
    finally:
        fake.corrupt_uploads = False
    assert sink.stat(blob.ref, blob.record) is None  # the corrupt object was removed again


def test_config_needs_credentials() -> None:
    from rcetl.plugins.sinks.dropbox import DropboxConfig

    with pytest.raises(ValueError, match="access_token"):
        DropboxConfig(root="/x")
    assert DropboxConfig(root="//a//b/", access_token="t").root == "/a/b"
