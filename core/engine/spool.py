"""Spool files: a binary streams to local disk while its SHA-256 and size are computed.

Sources write into a :class:`HashingSpool` (append-only, so a resumed download simply continues);
the result is a :class:`rcetl.SpooledBlob` every blob sink uploads from. Files are owner-only and
removed when the blob has been stored everywhere (invariant 4: no binary is held in memory).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from ..content import Evidence, EvidenceRecorder
from ..coordination import process_alive
from ..records import BlobRef, Record, SpooledBlob

CHUNK = 1024 * 1024


class HashingSpool:
    """A write-only file that hashes what passes through it."""

    def __init__(self, folder: Path) -> None:
        fd, name = tempfile.mkstemp(prefix="blob-", suffix=".part", dir=folder)  # mode 0600
        self.path = name
        self._fh = os.fdopen(fd, "wb", buffering=CHUNK)
        self._sha = hashlib.sha256()
        self.size = 0
        #: A source may set what the server said the bytes are (the listing may not know).
        self.content_type: str | None = None
        #: ... and how long the server said the body is (``Content-Length``), for the content check.
        self.content_length: int | None = None
        self._evidence = EvidenceRecorder()  # first and last bytes, for the content check

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._fh.write(data)
        self._sha.update(data)
        self._evidence.update(data)
        self.size += len(data)
        return len(data)

    def evidence(self) -> Evidence:
        """What the content check needs to know of the bytes written so far."""
        return self._evidence.evidence(self.content_type, self.content_length)

    def tell(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._fh.flush()

    def finish(self, ref: BlobRef, record: Record | None) -> SpooledBlob:
        """The spooled blob; its ref carries the served content type when the source learnt it."""
        self._fh.close()
        served = (self.content_type or "").split(";", 1)[0].strip().lower()
        if served and served != (ref.content_type or "").split(";", 1)[0].strip().lower() \
                and served != "application/octet-stream":
            # Drop the source's guessed extension so the key names what the bytes are.
            variables = {k: v for k, v in ref.variables.items() if k != "ext"}
            ref = replace(ref, content_type=served, variables=variables)
        return SpooledBlob(ref=ref, path=self.path, size=self.size, sha256=self._sha.hexdigest(),
                           content_type=ref.content_type, record=record)

    def discard(self) -> None:
        try:
            self._fh.close()
        finally:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


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

