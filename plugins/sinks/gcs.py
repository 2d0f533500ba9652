"""The ``gcs`` blob sink: Google Cloud Storage through google-cloud-storage.

Writes carry ``ifGenerationMatch=0`` (create only: a concurrent writer gets 412, never a silent
overwrite). Files from ``resumable_threshold`` up go as resumable uploads in ``chunk_size``
pieces. GCS reports CRC32C and MD5, not SHA-256, so one local pass computes CRC32C beside SHA-256:
the SHA-256 ties the file to the download, the CRC32C ties the stored object to the file.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, BinaryIO, Literal

from pydantic import Field, field_validator, model_validator

import rcetl
from rcetl.blobs import BucketStoreConfig, BucketStoreSink

MiB = 1 << 20
CHUNK_UNIT = 256 * 1024  # GCS resumable chunks must be multiples of 256 KiB
LIBRARY_MULTIPART_MAX = 8 * MiB  # google-cloud-storage uploads larger files resumably anyway


class GCSConfig(BucketStoreConfig):
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$",
                        description="bucket name (lowercase letters, digits, dots, hyphens, underscores)")
    project: str | None = None
    credentials_file: str | None = None
    """A service-account JSON file; otherwise Application Default Credentials."""
    emulator_host: str | None = None
    """An emulator's URL (fake-gcs-server); STORAGE_EMULATOR_HOST is honoured too. Anonymous auth."""
    chunk_size: int = 16 * MiB
    resumable_threshold: int = 8 * MiB
    """Files of this size and up go resumably (the library does so above 8 MiB regardless)."""
    storage_class: Literal["STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"] | None = None
    retention_days: int | None = None
    """Object retention (the bucket needs object retention enabled)."""
    retention_mode: Literal["Unlocked", "Locked"] = "Unlocked"
    temporary_hold: bool = False
    timeout: float = 120.0
    """Seconds per request."""
    retry_deadline: float = 120.0
    """How long the client keeps retrying a transient fault before the item is left for the next run."""

    @field_validator("chunk_size")
    @classmethod
    def _multiple_of_256k(cls, value: int) -> int:
        if value <= 0 or value % CHUNK_UNIT:
            raise ValueError(f"chunk_size must be a positive multiple of {CHUNK_UNIT} (256 KiB)")
        return value

    @model_validator(mode="after")
    def _one_auth(self) -> GCSConfig:
        if self.credentials_file and self.emulator_host:
            raise ValueError(
                "credentials_file and emulator_host exclude each other (emulators are anonymous)"
            )
        return self


class GCSSink(BucketStoreSink):
    location_scheme = "gs"
    config_model = GCSConfig
    description = "Google Cloud Storage: resumable uploads, CRC32C verified, create-only."
    config: GCSConfig

    _retry: Any = None  # the client's retry policy, set when the client is made (_connect)

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def bucket(self) -> Any:
        return self.handle()

    def _connect(self) -> Any:
        return self._make_client().bucket(self.config.bucket)

    def _make_client(self) -> Any:
        from google.cloud import storage
        from google.cloud.storage.retry import DEFAULT_RETRY

        c = self.config
        self._retry = DEFAULT_RETRY.with_timeout(c.retry_deadline)
        emulator = c.emulator_host or os.environ.get("STORAGE_EMULATOR_HOST")
        if emulator:
            from google.auth.credentials import AnonymousCredentials

            return storage.Client(
                project=c.project or "rcetl-emulator",
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": emulator},
            )
        if c.credentials_file:
            path = str(self.ctx.resolve(c.credentials_file))
            return storage.Client.from_service_account_json(path, project=c.project)
        return storage.Client(project=c.project)

    def _ensure_bucket(self) -> None:
        from google.api_core.exceptions import NotFound

        try:
            self.bucket.reload(timeout=self.config.timeout, retry=self._retry)
        except NotFound:
            if not self.config.create_bucket:
                raise
            self.bucket.client.create_bucket(self.bucket, timeout=self.config.timeout, retry=self._retry)

    def _disconnect(self, handle: Any) -> None:
        handle.client.close()  # the handle is a bucket; its client owns the connections

    # --- primitives ---------------------------------------------------------------------------

    def _list(self) -> Iterator[str]:
        prefix = f"{self.config.prefix}/" if self.config.prefix else None
        for obj in self.bucket.list_blobs(prefix=prefix, timeout=self.config.timeout, retry=self._retry):
            yield obj.name

    def _head(self, key: str) -> rcetl.ObjectInfo | None:
        obj = self.bucket.get_blob(key, timeout=self.config.timeout, retry=self._retry)
        if obj is None:
            return None
        return rcetl.ObjectInfo(
            size=obj.size,
            sha256=(obj.metadata or {}).get("sha256"),
            content_type=obj.content_type,
            checksums={k: v for k, v in (("crc32c", obj.crc32c), ("md5", obj.md5_hash)) if v},
        )

    def _upload(
        self, key: str, blob: rcetl.SpooledBlob, metadata: dict[str, str]
    ) -> rcetl.ObjectInfo:
        from google.api_core.exceptions import PreconditionFailed

        c = self.config
        obj = self.bucket.blob(key, chunk_size=c.chunk_size)
        obj.metadata = metadata
        if c.storage_class:
            obj.storage_class = c.storage_class
        if c.temporary_hold:
            obj.temporary_hold = True
        if c.retention_days is not None:
            obj.retention.mode = c.retention_mode
            obj.retention.retain_until_time = datetime.now(timezone.utc) + timedelta(days=c.retention_days)
        # The library picks resumable itself above 8 MiB; below that, leaving the size out makes it
        # stream a resumable upload in chunk_size pieces.
        size = None if c.resumable_threshold <= blob.size <= LIBRARY_MULTIPART_MAX else blob.size
        with open(blob.path, "rb") as fh:
            try:
                obj.upload_from_file(
                    fh,
                    size=size,
                    content_type=blob.content_type or blob.ref.content_type,
                    if_generation_match=0,
                    checksum="crc32c",
                    timeout=c.timeout,
                    retry=self._retry,
                )
            except PreconditionFailed as exc:
                raise self.KeyExists(key) from exc
        return rcetl.ObjectInfo(
            size=obj.size,
            sha256=metadata.get("sha256"),
            content_type=obj.content_type,
            checksums={k: v for k, v in (("crc32c", obj.crc32c), ("md5", obj.md5_hash)) if v},
        )

    def _verify(self, blob: rcetl.SpooledBlob, info: rcetl.ObjectInfo) -> None:
        import google_crc32c

        reported = info.checksums.get("crc32c")
        if reported is None:
            raise rcetl.IntegrityError(f"{self.name}: GCS reported no CRC32C for the upload")
        crc = google_crc32c.Checksum()
        self._expect(blob, "sha256", blob.sha256, self.hash_file(blob.path, crc))
        self._expect(blob, "size", str(blob.size), str(info.size))
        self._expect(blob, "crc32c", base64.b64encode(crc.digest()).decode(), reported)

    def _put_small(self, key: str, data: bytes, content_type: str) -> None:
        self.bucket.blob(key).upload_from_string(
            data, content_type=content_type, timeout=self.config.timeout, retry=self._retry
        )

    def _open(self, key: str) -> BinaryIO:
        obj = self.bucket.get_blob(key, timeout=self.config.timeout, retry=self._retry)
        if obj is None:  # the reader is lazy: fail here, not at its first read
            raise FileNotFoundError(f"{self.location(key)} does not exist")
        return obj.open("rb", chunk_size=self.config.chunk_size)

    def _delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        try:
            self.bucket.blob(key).delete(timeout=self.config.timeout, retry=self._retry)
        except NotFound:
            pass

    def _classify(self, exc: BaseException) -> rcetl.RcetlError | None:
        return _classify(exc, self.config.bucket)


def _classify(exc: BaseException, bucket: str) -> rcetl.RcetlError | None:
    import requests
    from google.api_core import exceptions as gx
    from google.auth.exceptions import DefaultCredentialsError, RefreshError

    try:
        from google.cloud.storage.exceptions import DataCorruption
    except ImportError:  # pragma: no cover - google-cloud-storage < 3
        from google.resumable_media.common import DataCorruption

    if isinstance(exc, DefaultCredentialsError):
        return rcetl.ConfigError(
            f"no Google credentials: {exc}",
            hint="set GOOGLE_APPLICATION_CREDENTIALS, credentials_file, or run `gcloud auth application-default login`",
        )
    if isinstance(exc, DataCorruption):
        return rcetl.IntegrityError(f"GCS checksum mismatch: {exc}")
    if isinstance(exc, gx.NotFound):
        if "No such object" in str(exc):
            return rcetl.PermanentError(f"not found: {exc}", hint="the object was deleted or never stored")
        return rcetl.ConfigError(
            f"bucket {bucket!r} does not exist", hint="create it, fix `bucket:`, or set create_bucket: true"
        )
    if isinstance(exc, (gx.Forbidden, gx.Unauthorized, RefreshError)):
        return rcetl.PermanentError(
            f"GCS refused the request: {exc}", hint="check the credentials' roles on the bucket"
        )
    if isinstance(exc, (gx.TooManyRequests, gx.ServerError, gx.RetryError, gx.DeadlineExceeded)):
        return rcetl.TransientError(f"GCS fault: {exc}", hint="retried on the next run")
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return rcetl.TransientError(f"GCS unreachable: {exc}", hint="retried on the next run")
    if isinstance(exc, gx.GoogleAPICallError):
        return rcetl.PermanentError(f"GCS error: {exc}")
    return None
