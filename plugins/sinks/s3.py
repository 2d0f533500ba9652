"""The ``s3`` blob sink: Amazon S3 and S3-compatible stores through boto3.

Uploads ask S3 for a SHA-256 checksum (``ChecksumAlgorithm='SHA256'``) and compare what S3
reports with the SHA-256 the engine took while downloading: a file below ``multipart_threshold``
goes up in one PUT whose answer carries that checksum (no transfer manager, no HEAD); large files
go up in parts
(boto3's TransferConfig); S3 then reports a composite checksum (SHA-256 of the parts' SHA-256s),
which is recomputed locally in the same pass that re-checks the whole-file digest.
Writes are create-only (``If-None-Match: *``) so two writers never clobber each other; below the
multipart threshold that is also how a key already taken is found (the first PUT answers 412), so a
new binary costs its own PUT and no look-up first (with ``sidecar: true`` its sidecar's PUT too;
with ``batch``, the default, its batch's manifest is one PUT at ``sync()``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, BinaryIO, Literal

from pydantic import Field, model_validator

import rcetl
from rcetl.blobs import BucketStoreConfig, BucketStoreSink

MiB = 1 << 20
# S3's own limits: parts of at least 5 MiB (but the last), at most 10,000 parts.
MIN_PART = 5 * MiB
# botocore asks the server for "100 Continue" before sending any PUT's body (a round trip more per
# request); a body up to this size is sent at once (a refused create-only PUT then costs at most this
# much of sending for nothing).
EXPECT_CONTINUE_ABOVE = 1 * MiB


class S3Config(BucketStoreConfig):
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
                        description="bucket name (3-63 lowercase letters, digits, dots, hyphens)")
    region: str | None = None
    endpoint_url: str | None = None
    """For S3-compatible stores (MinIO, Ceph, R2, Wasabi) and test servers."""
    profile: str | None = None
    """An AWS profile name; otherwise the standard chain (env, config files, instance role)."""
    access_key_id: str | None = None
    secret_access_key: str | None = None
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    multipart_threshold: int = 64 * MiB
    multipart_chunksize: int = 16 * MiB
    max_concurrency: int = 4
    sse: Literal["AES256", "aws:kms", "aws:kms:dsse"] | None = None
    kms_key_id: str | None = None
    storage_class: str | None = None
    """STANDARD, STANDARD_IA, GLACIER_IR, DEEP_ARCHIVE..."""
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] | None = None
    object_lock_days: int | None = None
    legal_hold: bool = False
    max_attempts: int = 5
    """Attempts per request (botocore's standard retry mode backs off between them)."""

    @model_validator(mode="after")
    def _consistent(self) -> S3Config:
        if (self.object_lock_mode is None) != (self.object_lock_days is None):
            raise ValueError("object_lock_mode and object_lock_days go together")
        if self.kms_key_id and not (self.sse or "").startswith("aws:kms"):
            raise ValueError("kms_key_id needs sse: aws:kms")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key go together")
        if self.multipart_chunksize < MIN_PART:
            raise ValueError(f"multipart_chunksize must be at least {MIN_PART} (S3's minimum part size)")
        return self


class S3Sink(BucketStoreSink):
    location_scheme = "s3"
    config_model = S3Config
    description = "Amazon S3 or an S3-compatible store: multipart, SHA-256 verified, create-only."
    config: S3Config

    def __init__(self, name: str, config: S3Config, ctx: rcetl.RunContext) -> None:
        super().__init__(name, config, ctx)
        self._transfer: Any = None
        # Keys being uploaded create-only; the request hook adds If-None-Match to their final call.
        self._create_only: set[str] = set()
        self._lock = threading.Lock()
        for secret in (config.secret_access_key,):
            if secret:
                rcetl.register_secret(secret)

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        return self.handle()

    def _connect(self) -> Any:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        c = self.config
        session = boto3.session.Session(
            profile_name=c.profile,
            aws_access_key_id=c.access_key_id,
            aws_secret_access_key=c.secret_access_key,
            region_name=c.region,
        )
        client = session.client(
            "s3",
            endpoint_url=c.endpoint_url,
            config=Config(
                s3={"addressing_style": c.addressing_style},
                retries={"mode": "standard", "max_attempts": c.max_attempts},
                max_pool_connections=max(10, c.max_concurrency * 2),
            ),
        )
        # s3transfer does not pass IfNoneMatch through; add it to the request that creates the object.
        for op in ("PutObject", "CompleteMultipartUpload"):
            client.meta.events.register(f"before-parameter-build.s3.{op}", self._add_if_none_match)
        # botocore adds the header on "before-call.s3", after any handler of a more specific event
        client.meta.events.register_last("before-call.s3", _no_expect_for_small_bodies)
        self._transfer = TransferConfig(
            multipart_threshold=c.multipart_threshold,
            multipart_chunksize=c.multipart_chunksize,
            max_concurrency=c.max_concurrency,
        )
        return client

    def _add_if_none_match(self, params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") in self._create_only:
            params["IfNoneMatch"] = "*"

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.config.bucket)
        except ClientError as exc:
            if _code(exc) not in ("404", "NoSuchBucket", "NotFound") or not self.config.create_bucket:
                raise
            args: dict[str, Any] = {"Bucket": self.config.bucket}
            if self.config.region and self.config.region != "us-east-1":
                args["CreateBucketConfiguration"] = {"LocationConstraint": self.config.region}
            if self.config.object_lock_mode:
                args["ObjectLockEnabledForBucket"] = True
            self.client.create_bucket(**args)

    def _disconnect(self, handle: Any) -> None:
        handle.close()

    # --- primitives ---------------------------------------------------------------------------

    def _list(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.config.bucket, Prefix=f"{self.config.prefix}/" if self.config.prefix else "")
        for page in pages:
            for obj in page.get("Contents") or []:
                yield obj["Key"]

    def _head(self, key: str) -> rcetl.ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.config.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        checksums = {"sha256_s3": head["ChecksumSHA256"]} if head.get("ChecksumSHA256") else {}
        return rcetl.ObjectInfo(
            size=head["ContentLength"],
            sha256=(head.get("Metadata") or {}).get("sha256"),
            content_type=head.get("ContentType"),
            checksums=checksums,
        )

    def _write_args(self, content_type: str | None) -> dict[str, Any]:
        c = self.config
        args: dict[str, Any] = {"ChecksumAlgorithm": "SHA256"}
        if content_type:
            args["ContentType"] = content_type
        if c.sse:
            args["ServerSideEncryption"] = c.sse
        if c.kms_key_id:
            args["SSEKMSKeyId"] = c.kms_key_id
        if c.storage_class:
            args["StorageClass"] = c.storage_class
        if c.object_lock_mode:
            args["ObjectLockMode"] = c.object_lock_mode
            args["ObjectLockRetainUntilDate"] = datetime.now(timezone.utc) + timedelta(
                days=c.object_lock_days or 0
            )
        if c.legal_hold:
            args["ObjectLockLegalHoldStatus"] = "ON"
        return args

    def _upload(
        self, key: str, blob: rcetl.SpooledBlob, metadata: dict[str, str]
    ) -> rcetl.ObjectInfo:
        args = self._write_args(blob.content_type or blob.ref.content_type)
        args["Metadata"] = metadata
        if blob.size < self.config.multipart_threshold:
            return self._put_file(key, blob, args)
        with self._lock:
            self._create_only.add(key)
        try:
            self.client.upload_file(blob.path, self.config.bucket, key, ExtraArgs=args, Config=self._transfer)
        except Exception as exc:
            self._raise_if_taken(exc, key)
            raise
        finally:
            with self._lock:
                self._create_only.discard(key)
        info = self._head(key)
        if info is None:
            raise rcetl.TransientError(f"{self.name}: {key} is not visible right after its upload")
        return info

    def _store_at(self, blob: rcetl.SpooledBlob, base: str) -> rcetl.StoredBlob:
        """A binary below the multipart threshold is first written with no look-up: the file (and
        with ``sidecar: true`` its sidecar before it) created only if absent (``If-None-Match: *``),
        so a new key (nearly every binary a run stores: the engine's ledger skips what is archived)
        costs one PUT (two with sidecars) and no HEAD. A key already taken answers 412 and goes the
        look-up way (skip, conflict, version)."""
        if blob.size >= self.config.multipart_threshold:
            return super()._store_at(blob, base)
        try:
            return self._create_new(base, blob)
        except self.KeyExists:
            return super()._store_at(blob, base)

    def _create_new(self, key: str, blob: rcetl.SpooledBlob) -> rcetl.StoredBlob:
        """With ``sidecar: true`` the sidecar first (once the binary exists its sidecar does too),
        both create-only; with ``batch`` (the default) the binary alone: its manifest line goes up
        at sync(). Raises :class:`KeyExists` when either key is taken, leaving no sidecar of ours
        beside another file."""
        sidecar = self.sidecar_key(key) if self.sidecar_beside else None
        if sidecar is not None:
            self._create_small(sidecar, self.sidecar_bytes(key, blob), "application/json")
        try:
            info = self._upload(key, blob, {"sha256": blob.sha256})
        except self.KeyExists:
            existing = self._head(key)  # a file without a sidecar (stored with ``sidecar: false``)
            if existing is not None and self._same_content(blob, existing):
                return self._stored(key, blob, skipped=True)  # the new sidecar describes these bytes
            if sidecar is not None:
                self._delete(sidecar)  # not ours to describe other bytes
            raise
        try:
            self._verify(blob, info)
        except rcetl.IntegrityError:
            self._discard(key)
            raise
        return self._stored(key, blob, skipped=False)

    def _create_small(self, key: str, data: bytes, content_type: str) -> None:
        """:meth:`_put_small`, create-only: raises :class:`KeyExists` when the key is taken."""
        try:
            self.client.put_object(Bucket=self.config.bucket, Key=key, Body=data, IfNoneMatch="*",
                                   **self._write_args(content_type))
        except Exception as exc:
            self._raise_if_taken(exc, key)
            raise

    def _raise_if_taken(self, exc: BaseException, key: str) -> None:
        """Raise :class:`KeyExists` when ``exc`` is S3 refusing a create-only write (412)."""
        if _code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
            raise self.KeyExists(key) from exc

    def _put_file(self, key: str, blob: rcetl.SpooledBlob, args: dict[str, Any]) -> rcetl.ObjectInfo:
        """One create-only PUT for a binary below the multipart threshold (most recordings, every
        fax): no transfer manager (a thread pool per upload) and no HEAD afterwards, because S3
        answers a PUT that carries a checksum with the SHA-256 of the bytes it received."""
        with open(blob.path, "rb") as body:
            size = os.fstat(body.fileno()).st_size
            try:
                answer = self.client.put_object(Bucket=self.config.bucket, Key=key, Body=body,
                                                IfNoneMatch="*", **args)
            except Exception as exc:
                self._raise_if_taken(exc, key)
                raise
        if not answer.get("ChecksumSHA256"):  # a store that does not say: ask it, as for parts
            info = self._head(key)
            if info is None:
                raise rcetl.TransientError(f"{self.name}: {key} is not visible right after its upload")
            return info
        return rcetl.ObjectInfo(size=size, sha256=args["Metadata"].get("sha256"),
                                content_type=args.get("ContentType"),
                                checksums={"sha256_s3": answer["ChecksumSHA256"]})

    def _verify(self, blob: rcetl.SpooledBlob, info: rcetl.ObjectInfo) -> None:
        reported = info.checksums.get("sha256_s3")
        if reported is None:
            raise rcetl.IntegrityError(
                f"{self.name}: the store reported no SHA-256 checksum",
                hint="the S3-compatible store may not support additional checksums",
            )
        if info.size != blob.size:
            self._expect(blob, "size", str(blob.size), str(info.size))
        if blob.size < self.config.multipart_threshold:
            self._expect(blob, "sha256", blob.sha256, _hex(reported))
            return
        # Multipart: S3 reports base64(sha256(part digests)) (with "-N" on real S3). One local
        # pass yields both that composite and the whole-file digest.
        whole, composite = _composite_sha256(
            blob.path, _part_size(self.config.multipart_chunksize, blob.size)
        )
        self._expect(blob, "sha256", blob.sha256, whole)
        self._expect(blob, "S3 composite sha256", composite, reported.split("-", 1)[0])

    def _put_small(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.config.bucket, Key=key, Body=data, **self._write_args(content_type)
        )

    def _open(self, key: str) -> BinaryIO:
        return self.client.get_object(Bucket=self.config.bucket, Key=key)["Body"]

    def _delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.config.bucket, Key=key)

    def _classify(self, exc: BaseException) -> rcetl.RcetlError | None:
        return _classify(exc, self.config.bucket)


def _no_expect_for_small_bodies(model: Any, params: dict[str, Any], **_: Any) -> None:
    """Drop the ``Expect: 100-continue`` botocore's own handler put on a PUT whose body is small."""
    if model.name == "PutObject" and "Expect" in params.get("headers", {}):
        from botocore.utils import determine_content_length

        size = determine_content_length(params.get("body"))
        if size is not None and size <= EXPECT_CONTINUE_ABOVE:
            del params["headers"]["Expect"]


def _hex(b64: str) -> str:
    return base64.b64decode(b64.split("-", 1)[0]).hex()


def _part_size(chunksize: int, size: int) -> int:
    """The part size s3transfer really uses (it grows parts to stay under 10,000)."""
    from s3transfer.utils import ChunksizeAdjuster

    return ChunksizeAdjuster().adjust_chunksize(chunksize, size)


def _composite_sha256(path: str, part_size: int) -> tuple[str, str]:
    whole = hashlib.sha256()
    digests = []
    with open(path, "rb") as fh:
        while part := fh.read(part_size):
            whole.update(part)
            digests.append(hashlib.sha256(part).digest())
    return whole.hexdigest(), base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode()


def _client_error(exc: BaseException | None) -> Any:
    """The botocore ClientError behind an exception (boto3 wraps them in S3UploadFailedError)."""
    from botocore.exceptions import ClientError

    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, ClientError):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _code(exc: BaseException) -> str:
    err = _client_error(exc)
    if err is None:
        return ""
    return str(err.response.get("Error", {}).get("Code", "")) or str(
        err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )


_TRANSIENT_CODES = {
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
    "503",
    "500",
    "Throttling",
}
_CREDENTIAL_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "403"}
_DIGEST_CODES = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum"}


def _classify(exc: BaseException, bucket: str) -> rcetl.RcetlError | None:
    from botocore import exceptions as bx

    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError, bx.ProfileNotFound)):
        return rcetl.ConfigError(
            f"no usable AWS credentials: {exc}", hint="set a profile, AWS_* variables or the sink's keys"
        )
    if isinstance(
        exc,
        (bx.EndpointConnectionError, bx.ConnectionClosedError, bx.ReadTimeoutError, bx.ConnectTimeoutError),
    ):
        return rcetl.TransientError(f"S3 unreachable: {exc}", hint="retried on the next run")
    code = _code(exc)
    if not code:
        return None
    if code in ("NoSuchBucket", "404") or (code == "NotFound"):
        return rcetl.ConfigError(
            f"bucket {bucket!r} does not exist", hint="create it, fix `bucket:`, or set create_bucket: true"
        )
    if code in _CREDENTIAL_CODES:
        return rcetl.PermanentError(
            f"S3 refused the request ({code})", hint="check the credentials and the bucket policy"
        )
    if code in _DIGEST_CODES:
        return rcetl.IntegrityError(f"S3 rejected the upload's checksum ({code})")
    if code in _TRANSIENT_CODES or code.startswith("5"):
        return rcetl.TransientError(f"S3 fault ({code})", hint="retried on the next run")
    return rcetl.PermanentError(f"S3 error {code}: {exc}")
