"""The ``dropbox`` blob sink: a Dropbox app folder or a path in a full Dropbox, via the dropbox SDK.

Dropbox reports a ``content_hash`` (SHA-256 over the SHA-256s of 4 MiB blocks), not a SHA-256,
so the upload loop feeds every chunk it sends to both hashes: the SHA-256 ties what was sent to
the download, the content hash ties what Dropbox stored to what was sent. Files are committed in
``add`` mode without autorename (create-only: a taken name is a conflict, never an overwrite).
"""

from __future__ import annotations

import hashlib
from typing import Any, BinaryIO

from pydantic import model_validator

import rcetl

MiB = 1 << 20
BLOCK = 4 * MiB


class ContentHasher:
    """Dropbox's content hash, streaming: hashlib-style ``update``/``hexdigest``."""

    def __init__(self) -> None:
        self._overall = hashlib.sha256()
        self._block = hashlib.sha256()
        self._in_block = 0

    def update(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            take = min(BLOCK - self._in_block, len(view))
            self._block.update(view[:take])
            self._in_block += take
            view = view[take:]
            if self._in_block == BLOCK:
                self._overall.update(self._block.digest())
                self._block, self._in_block = hashlib.sha256(), 0

    def hexdigest(self) -> str:
        overall = self._overall.copy()
        if self._in_block:
            overall.update(self._block.digest())
        return overall.hexdigest()


def content_hash(data: bytes) -> str:
    hasher = ContentHasher()
    hasher.update(data)
    return hasher.hexdigest()


class DropboxConfig(rcetl.ObjectStoreConfig):
    root: str = "/rcetl"
    """Folder the archive lives in. For an app-folder app, paths are inside the app's folder."""
    access_token: str | None = None
    refresh_token: str | None = None
    app_key: str | None = None
    app_secret: str | None = None
    session_threshold: int = 150 * MiB
    """Dropbox's single-request upload limit; files from this size go through upload sessions.
    The SDK holds a request body in memory, so files above ``chunk_size`` do as well."""
    chunk_size: int = 16 * MiB
    timeout: float = 100.0
    max_retries: int = 4
    """The SDK's own retries of a 5xx or 429 before the item is left for the next run."""
    ca_certs: str | None = None
    """A CA bundle to trust instead of the SDK's pinned one (test servers); disables REQUESTS_CA_BUNDLE."""
    api_host: str | None = None
    content_host: str | None = None
    """Host overrides (test servers, proxies); default: the SDK's, or DROPBOX_API_HOST at import."""

    @model_validator(mode="after")
    def _auth(self) -> DropboxConfig:
        if not self.access_token and not (self.refresh_token and self.app_key):
            raise ValueError("set access_token, or refresh_token with app_key (and app_secret)")
        if self.chunk_size <= 0 or self.session_threshold <= 0:
            raise ValueError("chunk_size and session_threshold must be positive")
        root = "/" + "/".join(p for p in self.root.split("/") if p)
        if any(p in (".", "..") for p in root.split("/")):
            raise ValueError("root must not contain '.' or '..'")
        self.root = root
        if self.sidecar == "batch":
            # The sink cannot list a folder (yet): `rcetl verify` could not find manifests again.
            raise ValueError("sidecar: batch is not supported by the dropbox sink; use sidecar: true (the default)")
        return self


class DropboxSink(rcetl.ObjectStoreSink):
    config_model = DropboxConfig
    description = "Dropbox (app folder or full Dropbox): upload sessions, content_hash verified."
    config: DropboxConfig

    def __init__(self, name: str, config: DropboxConfig, ctx: rcetl.RunContext) -> None:
        super().__init__(name, config, ctx)
        self.location_prefix = "dropbox:" + config.root.rstrip("/") + "/"
        for secret in (config.access_token, config.refresh_token, config.app_secret):
            rcetl.register_secret(secret)

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def dbx(self) -> Any:
        return self.handle()

    def _connect(self) -> Any:
        import dropbox
        from dropbox.session import HOST_API, HOST_CONTENT

        c = self.config
        session = dropbox.create_session(ca_certs=c.ca_certs)
        if c.ca_certs:
            session.trust_env = False  # else REQUESTS_CA_BUNDLE silently replaces ca_certs
        dbx = dropbox.Dropbox(
            oauth2_access_token=c.access_token,
            oauth2_refresh_token=c.refresh_token,
            app_key=c.app_key,
            app_secret=c.app_secret,
            session=session,
            timeout=c.timeout,
            max_retries_on_error=c.max_retries,
            max_retries_on_rate_limit=c.max_retries,
        )
        if c.api_host or c.content_host:
            # The SDK reads its hosts from the environment once, at import; set them per client.
            dbx._host_map[HOST_API] = c.api_host or dbx._host_map[HOST_API]
            dbx._host_map[HOST_CONTENT] = c.content_host or dbx._host_map[HOST_CONTENT]
            if c.refresh_token and not c.access_token:
                dbx.refresh_access_token(host=dbx._host_map[HOST_API])
        return dbx

    def open(self) -> None:
        self._guarded(lambda: self.dbx, "connecting")

    def check(self) -> None:
        self._guarded(lambda: self.dbx.users_get_current_account(), "checking the account")

    def _disconnect(self, handle: Any) -> None:
        handle.close()

    # --- primitives ---------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        return self.config.root.rstrip("/") + "/" + key

    def _head(self, key: str) -> rcetl.ObjectInfo | None:
        import dropbox

        try:
            meta = self.dbx.files_get_metadata(self._path(key))
        except dropbox.exceptions.ApiError as exc:
            if _is_not_found(exc):
                return None
            raise
        if not isinstance(meta, dropbox.files.FileMetadata):
            raise rcetl.ConflictError(f"{self.name}: {self._path(key)} is a folder, not a file")
        return rcetl.ObjectInfo(size=meta.size, checksums={"content_hash": meta.content_hash})

    def _same_content(self, blob: rcetl.SpooledBlob, info: rcetl.ObjectInfo) -> bool:
        if info.size != blob.size:
            return False
        hasher = ContentHasher()
        return self.hash_file(blob.path, hasher) == blob.sha256 and hasher.hexdigest() == info.checksums.get(
            "content_hash"
        )

    def _upload(
        self, key: str, blob: rcetl.SpooledBlob, metadata: dict[str, str]
    ) -> rcetl.ObjectInfo:
        import dropbox
        from dropbox.files import CommitInfo, WriteMode

        c = self.config
        commit = CommitInfo(path=self._path(key), mode=WriteMode.add, autorename=False, mute=True)
        sha, whole = hashlib.sha256(), ContentHasher()
        try:
            with open(blob.path, "rb") as fh:
                chunk = fh.read(c.chunk_size)
                sha.update(chunk)
                whole.update(chunk)
                if blob.size < c.session_threshold and blob.size <= c.chunk_size:
                    meta = self.dbx.files_upload(
                        chunk,
                        commit.path,
                        mode=commit.mode,
                        autorename=False,
                        mute=True,
                        content_hash=content_hash(chunk),
                    )
                else:
                    meta = self._session_upload(fh, chunk, commit, blob.size, sha, whole)
        except dropbox.exceptions.ApiError as exc:
            if _is_conflict(exc):
                raise self.KeyExists(key) from exc
            raise
        return rcetl.ObjectInfo(
            size=meta.size,
            sha256=sha.hexdigest(),  # of the bytes sent; _verify compares it with the download's
            checksums={"content_hash": meta.content_hash, "sent_content_hash": whole.hexdigest()},
        )

    def _session_upload(
        self, fh: BinaryIO, first: bytes, commit: Any, size: int, sha: Any, whole: ContentHasher
    ) -> Any:
        from dropbox.files import UploadSessionCursor

        step = self.config.chunk_size
        start = self.dbx.files_upload_session_start(first, content_hash=content_hash(first))
        cursor = UploadSessionCursor(session_id=start.session_id, offset=len(first))
        while cursor.offset + step < size:  # more than the last chunk remains
            chunk = fh.read(step)
            sha.update(chunk)
            whole.update(chunk)
            self.dbx.files_upload_session_append_v2(chunk, cursor, content_hash=content_hash(chunk))
            cursor.offset += len(chunk)
        last = fh.read(step)
        sha.update(last)
        whole.update(last)
        # finish's content_hash covers the whole file, so Dropbox checks the assembled object too.
        return self.dbx.files_upload_session_finish(last, cursor, commit, content_hash=whole.hexdigest())

    def _verify(self, blob: rcetl.SpooledBlob, info: rcetl.ObjectInfo) -> None:
        self._expect(blob, "sha256", blob.sha256, info.sha256)
        self._expect(blob, "size", str(blob.size), str(info.size))
        self._expect(
            blob, "content_hash", info.checksums["sent_content_hash"], info.checksums.get("content_hash")
        )

    def _put_small(self, key: str, data: bytes, content_type: str) -> None:
        from dropbox.files import WriteMode

        self.dbx.files_upload(
            data, self._path(key), mode=WriteMode.overwrite, mute=True, content_hash=content_hash(data)
        )

    def _open(self, key: str) -> BinaryIO:
        import dropbox

        try:
            _meta, response = self.dbx.files_download(self._path(key))
        except dropbox.exceptions.ApiError as exc:
            if _is_not_found(exc):
                raise FileNotFoundError(f"{self.location(key)} does not exist") from exc
            raise
        return response.raw

    def _delete(self, key: str) -> None:
        import dropbox

        try:
            self.dbx.files_delete_v2(self._path(key))
        except dropbox.exceptions.ApiError as exc:
            if not _is_not_found(exc):
                raise

    def _classify(self, exc: BaseException) -> rcetl.RcetlError | None:
        return _classify(exc)


def _is_not_found(exc: Any) -> bool:
    # The SDK's error union when the exception carries one, else None (its AttributeError is caught).
    error: Any = getattr(exc, "error", None)
    try:
        return error.is_path() and error.get_path().is_not_found()
    except AttributeError:
        return "not_found" in str(exc)


def _is_conflict(exc: Any) -> bool:
    """An upload's or a session finish's "path/conflict" error (UploadError.path.reason)."""
    error: Any = getattr(exc, "error", None)  # as in _is_not_found
    try:
        return error.is_path() and error.get_path().reason.is_conflict()
    except AttributeError:
        return False


def _classify(exc: BaseException) -> rcetl.RcetlError | None:
    import requests
    from dropbox import exceptions as dx

    if isinstance(exc, dx.AuthError):
        return rcetl.PermanentError(
            f"Dropbox refused the credentials: {exc.error}",
            hint="renew the refresh token (or access token) and check the app's scopes (files.content.write)",
        )
    if isinstance(exc, dx.BadInputError):
        return rcetl.ConfigError(
            f"Dropbox rejected the request: {exc.message}", hint="check app_key and app_secret"
        )
    if isinstance(exc, (dx.RateLimitError, dx.InternalServerError)):
        return rcetl.TransientError(f"Dropbox fault: {exc}", hint="retried on the next run")
    if isinstance(exc, dx.HttpError):
        if exc.status_code >= 500 or exc.status_code == 429:
            return rcetl.TransientError(f"Dropbox HTTP {exc.status_code}", hint="retried on the next run")
        return rcetl.PermanentError(f"Dropbox HTTP {exc.status_code}: {exc.body}")
    if isinstance(exc, dx.ApiError):
        text = repr(exc.error)
        if "insufficient_space" in text:
            return rcetl.TransientError("the Dropbox account is full", hint="free space; the item is retried")
        if "content_hash_mismatch" in text:
            return rcetl.IntegrityError(
                f"Dropbox received bytes that do not match their content hash: {text}"
            )
        return rcetl.PermanentError(f"Dropbox error: {text}")
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return rcetl.TransientError(f"Dropbox unreachable: {exc}", hint="retried on the next run")
    return None
