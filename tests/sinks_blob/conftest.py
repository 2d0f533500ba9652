"""Fixtures for the blob-sink tests: one ``backend`` per object store, each a real server
speaking the store's protocol (moto for S3, fake-gcs-server for GCS, our HTTPS fake for Dropbox:
the session fixtures of tests/servers.py), so the contract suite in test_contract.py runs the real
SDKs end to end."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import rcetl
from tests.servers import unique


@dataclass
class Backend:
    """How the contract suite builds and inspects one kind of sink."""

    name: str
    sink_class: type[rcetl.Sink]
    options: dict[str, Any]
    # Options that make this sink upload in several parts/chunks with small test files.
    large_options: dict[str, Any] = field(default_factory=dict)
    large_size: int = 3 << 20
    # Starts counting the part/chunk requests a sink makes; returns the counter (None: no parts).
    count_parts: Callable[[Any, pytest.MonkeyPatch], Callable[[], int]] | None = None


def run_context(tmp_path: Path) -> rcetl.RunContext:
    return rcetl.RunContext.standalone(tmp_path, "t")


def build_sink(sink_class: type[rcetl.Sink], name: str, options: dict[str, Any], ctx: rcetl.RunContext) -> Any:
    """A sink as a pipeline builds it: options validated by the class's model (not opened)."""
    config = sink_class.config_model.model_validate(options)
    return sink_class.configured(config)(name, config, ctx)


def make_sink(backend: Backend, ctx: rcetl.RunContext, **overrides: Any) -> rcetl.ObjectStoreSink:
    sink = build_sink(backend.sink_class, backend.name, {**backend.options, **overrides}, ctx)
    sink.open()
    return sink


class BlobMaker:
    """Builds SpooledBlob objects the way the engine does: bytes on disk plus their SHA-256."""

    def __init__(self, spool: Path) -> None:
        self.spool = spool
        self.n = 0

    def __call__(
        self,
        data: bytes,
        blob_id: str = "rec-1",
        kind: str = "recording",
        content_type: str = "audio/mpeg",
        sha256: str | None = None,
        **variables: Any,
    ) -> rcetl.SpooledBlob:
        self.n += 1
        path = self.spool / f"spool-{self.n}"
        path.write_bytes(data)
        variables.setdefault("date", datetime(2024, 3, 5, 14, 30, tzinfo=timezone.utc))
        variables.setdefault("extension", "101")
        ref = rcetl.BlobRef(
            blob_id=blob_id,
            url=f"https://media.example/{blob_id}",
            kind=kind,
            content_type=content_type,
            size=len(data),
            variables=variables,
        )
        record = rcetl.Record(
            stream="call_log",
            key=f"call-{blob_id}",
            data={"id": f"call-{blob_id}", "recording": {"id": blob_id}, "big": 2**60 + 1},
            account="acc-1",
            blobs=[ref],
            occurred_at=variables["date"] if isinstance(variables["date"], datetime) else None,
        )
        return rcetl.SpooledBlob(
            ref=ref,
            path=str(path),
            size=len(data),
            sha256=sha256 or hashlib.sha256(data).hexdigest(),
            content_type=content_type,
            record=record,
        )


@pytest.fixture
def ctx(tmp_path: Path) -> rcetl.RunContext:
    return run_context(tmp_path)


@pytest.fixture
def blobs(tmp_path: Path) -> BlobMaker:
    spool = tmp_path / "spool"
    spool.mkdir()
    return BlobMaker(spool)


# --- backends ------------------------------------------------------------------------------------


def _filesystem(tmp_path: Path) -> Iterator[Backend]:
    from rcetl.plugins.sinks import filesystem

    yield Backend("filesystem", filesystem.FilesystemSink, {"path": "archive"}, large_size=24 << 20)


def _count_s3_parts(sink: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    parts: list[int] = []
    sink.client.meta.events.register("after-call.s3.UploadPart", lambda **_: parts.append(1))
    return lambda: len(parts)


def _s3(request: pytest.FixtureRequest) -> Iterator[Backend]:
    from rcetl.plugins.sinks import s3

    url = request.getfixturevalue("s3_url")
    for var, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        request.getfixturevalue("monkeypatch").setenv(var, value)
    options = {
        "bucket": unique("rcetl-test").lower(),
        "endpoint_url": url,
        "region": "us-east-1",
        "addressing_style": "path",
        "create_bucket": True,
    }
    yield Backend(
        "s3",
        s3.S3Sink,
        options,
        large_options={"multipart_threshold": 5 << 20, "multipart_chunksize": 5 << 20},
        large_size=11 << 20,
        count_parts=_count_s3_parts,
    )


def _count_gcs_chunks(sink: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    from google.cloud.storage._media.requests.upload import ResumableUpload

    chunks: list[int] = []
    real = ResumableUpload.transmit_next_chunk

    def counting(self, *args, **kwargs):  # a spy: the real chunk still goes to the server
        chunks.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ResumableUpload, "transmit_next_chunk", counting)
    return lambda: len(chunks)


def _gcs(request: pytest.FixtureRequest) -> Iterator[Backend]:
    from rcetl.plugins.sinks import gcs

    url = request.getfixturevalue("gcs_url")
    options = {"bucket": unique("rcetl-test").lower(), "emulator_host": url, "create_bucket": True}
    yield Backend(
        "gcs",
        gcs.GCSSink,
        options,
        large_options={"chunk_size": 256 * 1024, "resumable_threshold": 512 * 1024},
        large_size=(1 << 20) + 4096,
        count_parts=_count_gcs_chunks,
    )


def _dropbox(request: pytest.FixtureRequest) -> Iterator[Backend]:
    from rcetl.plugins.sinks import dropbox

    fake, host, ca = request.getfixturevalue("dropbox_fake")
    options = {
        "root": "/" + unique("rcetl-test"),
        "access_token": "test-token",
        "ca_certs": ca,
        "api_host": host,
        "content_host": host,
    }

    def count_appends(sink: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
        before = fake.calls.get("files/upload_session/append_v2", 0)
        return lambda: fake.calls.get("files/upload_session/append_v2", 0) - before + 1  # + the start

    yield Backend(
        "dropbox",
        dropbox.DropboxSink,
        options,
        large_options={"session_threshold": 1 << 20, "chunk_size": 1 << 20},
        large_size=(3 << 20) + 100,
        count_parts=count_appends,
    )


BACKENDS: dict[str, Callable[..., Iterator[Backend]]] = {
    "filesystem": _filesystem,
    "s3": _s3,
    "gcs": _gcs,
    "dropbox": _dropbox,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    factory = BACKENDS[request.param]
    yield from factory(tmp_path) if request.param == "filesystem" else factory(request)
