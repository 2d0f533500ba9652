"""Spool files: a binary streams to local disk while its SHA-256 and size are computed.

Sources write into a :class:`HashingSpool` (append-only, so a resumed download simply continues);
the result is a :class:`rcetl.SpooledBlob` every blob sink uploads from. Its file stays open until
the engine releases it, so the folder sink hashes, fsyncs and links it without opening it again.
Files are owner-only and removed (or truncated and reused, see :class:`SpoolFiles`) when the blob
has been stored everywhere (invariant 4: no binary is held in memory).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from ..content import Evidence, EvidenceRecorder
from ..coordination import process_alive
from ..hashing import feed
from ..records import BlobRef, Record, SpooledBlob

CHUNK = 1024 * 1024
#: Writes smaller than this are gathered before they reach the file (a source may write small pieces).
_GATHER = 256 * 1024


@dataclass
class PrivateSpooledBlob(SpooledBlob):
    """A blob in a spool file of the engine's own (see :attr:`SpooledBlob.linkable`): never changed
    after :meth:`HashingSpool.finish`, and a file a sink took a hard link to is never reused."""

    linkable: ClassVar[bool] = True


class HashingSpool:
    """A write-only file that hashes what passes through it (``path``: a truncated file to reuse)."""

    def __init__(self, folder: Path, path: str | None = None, *, new: bool = False) -> None:
        """``path``: a truncated file to reuse, or (``new``) a name to create (owner-only, failing if
        it exists); neither: a fresh random name in ``folder``."""
        if path is None:
            fd, path = tempfile.mkstemp(prefix="blob-", suffix=".part", dir=folder)  # mode 0600
        elif new:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        else:
            fd = os.open(path, os.O_RDWR | os.O_TRUNC)
        self.path = path
        # A raw descriptor: bodies arrive in chunks of up to a megabyte, and a buffered file object
        # would cost three system calls more per binary to set up (fstat, isatty, lseek).
        self._fd: int | None = fd
        self._gathered = bytearray()
        self._sha = hashlib.sha256()
        self.size = 0
        #: A source may set what the server said the bytes are (the listing may not know).
        self.content_type: str | None = None
        #: ... and how long the server said the body is (``Content-Length``), for the content check.
        self.content_length: int | None = None
        self._evidence = EvidenceRecorder()  # first and last bytes, for the content check
        #: When the first byte arrived (time.monotonic), for the latency the download saw.
        self.first_byte_at: float | None = None
        self.blob: PrivateSpooledBlob | None = None  # once finished

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.blob is not None:  # its descriptor stays open for the sinks, never for more bytes
            raise ValueError("write to a finished spool file")
        n, offset = len(data), self.size
        if not offset and n:
            self.first_byte_at = time.monotonic()
        feed(self._sha, data)
        self._evidence.update(data)
        self.size += n
        if self._gathered or n < _GATHER:
            self._gathered += data
            if len(self._gathered) >= _GATHER:
                self.flush()  # everything gathered ends at self.size
        else:
            self._write_out(data, offset)
        return n

    def evidence(self) -> Evidence:
        """What the content check needs to know of the bytes written so far."""
        return self._evidence.evidence(self.content_type, self.content_length)

    def tell(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        if self._gathered:
            self._write_out(self._gathered, self.size - len(self._gathered))
            self._gathered = bytearray()

    def _write_out(self, data: bytes | bytearray | memoryview, offset: int) -> None:
        if self._fd is None:
            raise ValueError("write to a finished spool file")
        view = memoryview(data)
        while view:
            done = os.pwrite(self._fd, view, offset)
            view, offset = view[done:], offset + done

    def finish(self, ref: BlobRef, record: Record | None) -> SpooledBlob:
        """The spooled blob; its ref carries the served content type when the source learnt it. The
        file stays open (the blob's ``fd``) until the engine releases the spool."""
        self.flush()
        served = (self.content_type or "").split(";", 1)[0].strip().lower()
        if served and served != (ref.content_type or "").split(";", 1)[0].strip().lower() \
                and served != "application/octet-stream":
            # Drop the source's guessed extension so the key names what the bytes are.
            variables = {k: v for k, v in ref.variables.items() if k != "ext"}
            ref = replace(ref, content_type=served, variables=variables)
        self.blob = PrivateSpooledBlob(ref=ref, path=self.path, size=self.size, sha256=self._sha.hexdigest(),
                                       content_type=ref.content_type, record=record,
                                       fd=-1 if self._fd is None else self._fd)
        return self.blob

    def close(self) -> None:
        """Write out what is gathered and close the file (idempotent)."""
        if self._fd is None:
            return
        try:
            self.flush()
        finally:
            fd, self._fd = self._fd, None
            if self.blob is not None:
                self.blob.fd = -1
            os.close(fd)

    def discard(self) -> None:
        if self.blob is not None:
            self.blob.fd = -1
        try:
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)
        finally:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


class SpoolFiles:
    """The spool files of one spool folder, truncated and reused instead of created and deleted
    per binary.

    Creating a file right after deleting others is costly on ext4 (it searches its inode bitmap
    past recently deleted inodes: ~20 % of a run's CPU when thousands of small recordings passed
    through fresh spool files). A file a sink took a hard link to (its bytes are now an archived
    file) is only unlinked, never reused. A kept file is emptied when its binary is done with (no
    recording stays on disk once stored), and every session on the folder (a Celery worker runs one
    per task) shares one :meth:`of` it, so at most ``keep`` files wait there whatever the tasks.
    """

    _shared: ClassVar[dict[str, SpoolFiles]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, folder: Path, keep: int = 32) -> None:
        self.folder = folder
        self.keep = keep
        self._free: list[str] = []
        self._lock = threading.Lock()
        # New files are named by a counter (the folder is the run's own, ``<pid>-<run>/``), not
        # by mkstemp's random draw: most binaries of a run need a new file (a sink hard-linked the
        # last one), and the draw cost more Python than the file's creation.
        self._prefix = os.path.join(str(folder), f"blob-{os.urandom(3).hex()}-")
        self._names = itertools.count()

    @classmethod
    def of(cls, folder: Path) -> SpoolFiles:
        """The spool files of ``folder``, shared by every archiver spooling there."""
        with cls._shared_lock:
            files = cls._shared.get(str(folder))
            if files is None:
                if len(cls._shared) >= 64:  # folders of closed pipelines (removed with their files)
                    for gone in [k for k in cls._shared if not os.path.isdir(k)]:
                        del cls._shared[gone]
                files = cls._shared[str(folder)] = cls(folder)
            return files

    def open(self) -> HashingSpool:
        with self._lock:
            path = self._free.pop() if self._free else None
        if path is not None:
            try:
                return HashingSpool(self.folder, path)
            except OSError:  # removed meanwhile (the run's folder cleaned up): start a new one
                pass
        for _ in range(3):
            try:
                return HashingSpool(self.folder, f"{self._prefix}{next(self._names):x}.part", new=True)
            except FileExistsError:  # another process's file of that name (a forked worker): skip it
                continue
        return HashingSpool(self.folder)

    def release(self, spool: HashingSpool) -> None:
        """``spool`` is no longer needed: keep its file (emptied) for the next binary, or remove it."""
        if spool.blob is not None and spool.blob.kept:
            spool.close()  # a sink publishes (renames) or removes the file at its sync()
            return
        try:
            linked = spool.blob is not None and spool.blob.linked
            spool.close()
            if not linked and os.stat(spool.path).st_nlink == 1:
                with self._lock:
                    keep = len(self._free) < self.keep
                if keep:
                    os.truncate(spool.path, 0)
                    with self._lock:
                        self._free.append(spool.path)
                    return
        except OSError:
            pass
        spool.discard()


def prepare_spool_dir(folder: Path) -> Path:
    """Create the spool root (owner-only) and remove what killed runs left in it.

    Each run spools into ``<pid>-<run>/`` and removes it when it ends; a run killed with SIGKILL
    cannot, so a folder whose process is gone holds only partial downloads: never trusted, removed.
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    for entry in folder.iterdir():
        pid = entry.name.split("-", 1)[0]
        if entry.is_dir() and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
    return folder

