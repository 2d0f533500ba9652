"""Content checks: a binary is accepted only if its bytes are what the metadata announced.

A download that answers ``200`` with a login page (``text/html``), an error body
(``application/json``), nothing at all, or half a file must never be archived as a recording, a
fax or an attachment: ``verify`` would prove the wrong bytes and ``purge`` would then delete the
only good copy at the source. Sources state what they expect on the :class:`~rcetl.BlobRef`
(``accept``: media types or families such as ``audio/*``; ``content_type``; ``size``); the
engine gathers :class:`Evidence` while the bytes stream to the spool (first and last bytes, size,
the served ``Content-Type`` and ``Content-Length``) and calls :func:`check_content` before any sink
sees the file. ``rcetl verify`` runs the same check on stored files with :func:`check_stored`.

The core knows no RingCentral endpoint: it only compares expectations with evidence.
Magic bytes come from the ``filetype`` library (pure Python, no libmagic); the few checks written
here by hand are those it does not make (see each one's comment).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import BinaryIO

import filetype
from filetype.types import Type as _FileType

from .errors import TransientError
from .records import BlobRef

__all__ = [
    "HEAD_BYTES",
    "TAIL_BYTES",
    "ContentMismatch",
    "ContentVerdict",
    "Evidence",
    "EvidenceRecorder",
    "accepted_types",
    "check_content",
    "check_stored",
    "describe_head",
    "replaces_invalid",
    "require_content",
    "sniff",
]

#: Bytes kept from the start of a body: what ``filetype`` reads at most for any signature.
HEAD_BYTES = 8192
#: Bytes kept from the end: enough for a PDF trailer (``%%EOF`` sits in the last 1 KiB).
TAIL_BYTES = 1024

# Spellings of one media type that servers use interchangeably.
_ALIASES = {
    "audio/mp3": "audio/mpeg",
    "audio/mpeg3": "audio/mpeg",
    "audio/x-mpeg": "audio/mpeg",
    "audio/x-mp3": "audio/mpeg",
    "audio/wav": "audio/x-wav",
    "audio/wave": "audio/x-wav",
    "audio/vnd.wave": "audio/x-wav",
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/tif": "image/tiff",
    "application/x-pdf": "application/pdf",
    "audio/x-ogg": "audio/ogg",
    "application/ogg": "audio/ogg",
}
# Served types that say nothing about the bytes: the magic-byte check decides alone.
_UNINFORMATIVE = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/x-download"})


def normalise(media_type: str | None) -> str:
    """``Audio/WAV; codec=1`` -> ``audio/x-wav``: parameters dropped, lower case, aliases merged."""
    base = (media_type or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


class _MpegFrames(_FileType):
    """MPEG audio that starts with a frame header instead of an ID3 tag.

    ``filetype`` (1.2) knows only the MPEG-1/2 Layer III sync words (FF FB, FF F3, FF F2); telephone
    recordings are often MPEG-2.5 (FF E3 ...). Written here because the library has no matcher for
    them; it checks the header's fields, not just the sync bits, so random bytes rarely match.
    """

    def __init__(self) -> None:
        super().__init__(mime="audio/mpeg", extension="mp3")

    def match(self, buf: bytes) -> bool:
        if len(buf) < 4 or buf[0] != 0xFF or buf[1] & 0xE0 != 0xE0:
            return False
        version, layer = (buf[1] >> 3) & 3, (buf[1] >> 1) & 3
        bitrate, rate = buf[2] >> 4, (buf[2] >> 2) & 3
        return version != 1 and layer != 0 and bitrate != 15 and rate != 3


_MATCHERS = [_MpegFrames(), *filetype.TYPES]


def sniff(head: bytes) -> str | None:
    """The media type the first bytes show (normalised), or None when no signature matches.

    Beyond ``filetype``'s signatures, bodies that are plainly HTML or JSON are named as such: those
    are what a proxy's error page and an API error look like.
    """
    kind = filetype.match(head, matchers=_MATCHERS) if head else None
    if kind is not None:
        return normalise(kind.mime)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "text/html"
    if text.startswith((b"{", b"[")) and _is_text(head):
        return "application/json"
    if text.startswith(b"<?xml"):
        return "application/xml"
    return None


def _is_text(head: bytes) -> bool:
    """Text as a text attachment holds it: valid UTF-8 (a multi-byte character may be cut at the
    end of the sample) and no control characters but tab, newline, carriage return and form feed."""
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3 or exc.reason != "unexpected end of data":
            return False
        decoded = head[: exc.start].decode("utf-8")
    return not any(ord(c) < 32 and c not in "\t\n\r\f" for c in decoded)


def accepted_types(ref: BlobRef) -> tuple[str, ...]:
    """What the source said the bytes may be: ``ref.accept`` if given, else its declared
    ``content_type`` (nothing to check when neither is given or the type is uninformative)."""
    if ref.accept:
        return tuple(normalise(t) if not t.endswith("/*") else t.lower() for t in ref.accept)
    declared = normalise(ref.content_type)
    return () if declared in _UNINFORMATIVE else (declared,)


def _allowed(media_type: str, accepted: Iterable[str]) -> bool:
    family = media_type.split("/", 1)[0] + "/*"
    return any(a in (media_type, family) for a in accepted)


@dataclass(frozen=True)
class Evidence:
    """What is known about one body: its first and last bytes, its size, and what the server said."""

    head: bytes
    tail: bytes
    size: int
    served_type: str | None = None
    content_length: int | None = None


class EvidenceRecorder:
    """Keeps the first :data:`HEAD_BYTES` and last :data:`TAIL_BYTES` of a stream as it is written,
    in constant memory (invariant 4: the file itself is never held)."""

    def __init__(self) -> None:
        self._head = bytearray()
        self._tail = bytearray()
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        data = memoryview(data).cast("B")
        if len(self._head) < HEAD_BYTES:
            self._head += data[: HEAD_BYTES - len(self._head)]
        self._tail += data[-TAIL_BYTES:]
        del self._tail[:-TAIL_BYTES]
        self.size += len(data)

    def evidence(self, served_type: str | None = None, content_length: int | None = None) -> Evidence:
        return Evidence(bytes(self._head), bytes(self._tail), self.size, served_type, content_length)


@dataclass(frozen=True)
class ContentVerdict:
    """The outcome of a content check; ``problems`` is empty when the bytes are what was announced.

    What was expected, what was found and the first bytes are described when asked for (a failed
    check's message): every download is checked, and describing cost as much as checking."""

    problems: tuple[str, ...]
    ref: BlobRef
    evidence: Evidence
    accepted: tuple[str, ...] = ()
    served: str | None = None
    detected: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def expected(self) -> str:
        expected = " or ".join(self.accepted) if self.accepted else "any content"
        if self.ref.size is not None:
            expected += f", {self.ref.size} bytes"
        return expected

    @property
    def found(self) -> str:
        return ", ".join(x for x in (
            f"{self.evidence.size} bytes",
            f"served as {self.served}" if self.served else "",
            f"looks like {self.detected}" if self.detected else "no known signature",
        ) if x)

    @property
    def head(self) -> str:
        return describe_head(self.evidence.head)

    def message(self, what: str) -> str:
        """One line a user can act on: what was expected, what came, the first bytes (sanitised)."""
        return (f"{what}: content check failed: {'; '.join(self.problems)} "
                f"(expected {self.expected}, got {self.found}; first bytes: {self.head})")


class ContentMismatch(TransientError):
    """A body is not what its metadata announced; nothing was stored, the item is retried later
    (a maintenance page today is usually the real file tomorrow)."""

    def __init__(self, what: str, verdict: ContentVerdict) -> None:
        super().__init__(verdict.message(what),
                         hint="nothing was stored; the item is retried on the next run. If it keeps failing, "
                              "the source is serving something else at that address")
        self.verdict = verdict


def describe_head(head: bytes, limit: int = 48) -> str:
    """The first bytes as a short printable string: control and non-ASCII bytes escaped, so a body
    can never write to the terminal or the log (and a secret-looking blob is cut short)."""
    sample = head[:limit]
    shown = "".join(chr(b) if 32 <= b < 127 and b not in (0x5C, 0x22) else f"\\x{b:02x}" for b in sample)
    more = "..." if len(head) > limit else ""
    return f'"{shown}{more}"' if head else "(none)"


def check_content(ref: BlobRef, evidence: Evidence) -> ContentVerdict:
    """Compare a body's evidence with what the source announced for ``ref``."""
    accepted = accepted_types(ref)
    served = normalise(evidence.served_type)
    detected = sniff(evidence.head)
    problems: list[str] = []

    declared_size = ref.size
    text_only = bool(accepted) and all(a.startswith("text/") for a in accepted)
    # Empty is a file only where the source said so, or for text of unknown length (an SMS with no body).
    if evidence.size == 0 and declared_size != 0 and not (text_only and declared_size is None):
        problems.append("the body is empty")
    if evidence.content_length is not None and evidence.content_length != evidence.size:
        problems.append(f"Content-Length announced {evidence.content_length} bytes, {evidence.size} arrived")
    if declared_size is not None and declared_size != evidence.size:
        problems.append(f"the metadata declared {declared_size} bytes, {evidence.size} arrived")

    if accepted and served not in _UNINFORMATIVE and not _allowed(served, accepted):
        problems.append(f"the server sent Content-Type {served}")
    if evidence.size:
        problems += _format_problems(accepted, detected, evidence)

    return ContentVerdict(tuple(problems), ref, evidence, accepted, served, detected)


def _format_problems(accepted: tuple[str, ...], detected: str | None, evidence: Evidence) -> list[str]:
    if not accepted:
        # Nothing declared: only what is never a binary the source would serve is refused.
        return [f"the body is {detected}, an error page, not a file"] if detected in ("text/html",) else []
    if all(a.startswith("text/") for a in accepted):
        if detected is not None and not detected.startswith("text/") and detected != "application/json":
            return [f"a text attachment holds {detected} bytes"]
        if detected == "text/html" and not _allowed("text/html", accepted):
            return ["the body is an HTML page"]
        return [] if _is_text(evidence.head) else ["a text attachment holds bytes that are not UTF-8 text"]
    if detected is None:
        # A declared type with no known signature (text/vcard, a video codec filetype lacks) cannot
        # be checked by its bytes; one whose signature is known must show it.
        if any(_has_signature(a) for a in accepted):
            return ["the first bytes match no signature of the expected type"]
        return []
    if not _allowed(detected, accepted):
        return [f"the bytes are {detected}"]
    return _completeness(detected, evidence)


def _has_signature(accepted: str) -> bool:
    if accepted.endswith("/*"):
        return accepted in ("audio/*", "image/*", "video/*")
    return any(normalise(t.mime) == accepted for t in _MATCHERS)


def _completeness(detected: str, evidence: Evidence) -> list[str]:
    """Whole-file checks for formats that say their own length: ``filetype`` only identifies a
    format from its first bytes, so a truncated file with an honest Content-Length would pass it."""
    if detected == "audio/x-wav" and len(evidence.head) >= 8:
        (riff_size,) = struct.unpack_from("<I", evidence.head, 4)
        # 0 and 0xFFFFFFFF are what streaming writers put when they do not know the length yet.
        if riff_size not in (0, 0xFFFFFFFF) and riff_size + 8 > evidence.size:
            return [f"the WAV header announces {riff_size + 8} bytes, only {evidence.size} arrived (truncated)"]
    if detected == "application/pdf" and b"%%EOF" not in evidence.tail:
        return ["the PDF has no end-of-file marker (truncated)"]
    return []


def require_content(ref: BlobRef, evidence: Evidence, what: str | None = None) -> None:
    """Raise :class:`ContentMismatch` unless the evidence matches ``ref``'s announcement."""
    verdict = check_content(ref, evidence)
    if not verdict.ok:
        raise ContentMismatch(what or f"{ref.kind} {ref.blob_id}", verdict)


def check_stored(ref: BlobRef, fh: BinaryIO, size: int | None = None) -> ContentVerdict:
    """The content check of a stored file (``rcetl verify``): reads its first and last bytes only.

    ``fh`` must be readable from its start; ``size`` (when the sink knows it) saves a seek on
    streams that cannot seek.
    """
    if _seekable(fh):
        head = fh.read(HEAD_BYTES)
        end = fh.seek(0, 2)
        fh.seek(max(end - TAIL_BYTES, 0))
        evidence = Evidence(head, fh.read(TAIL_BYTES), end)
    else:
        recorder = EvidenceRecorder()
        while chunk := fh.read(1 << 20):
            recorder.update(chunk)
        evidence = recorder.evidence()
    if size is not None and size != evidence.size:
        evidence = Evidence(evidence.head, evidence.tail, evidence.size, content_length=size)
    return check_content(ref, evidence)


def replaces_invalid(ref: BlobRef, stored: BinaryIO, new: BinaryIO) -> bool:
    """Whether a sink may overwrite ``stored`` with ``new`` under one blob id: only when the stored
    bytes fail the content check of the binary they stand for (an HTML login page or a JSON error
    body an older rcetl archived as a recording) and the new bytes pass it. Judged by what the bytes
    are (type, signature, completeness), not by the declared size: an older, different file is not
    invalid for being another length."""
    expected = replace(ref, size=None)
    return check_stored(expected, new).ok and not check_stored(expected, stored).ok


def _seekable(fh: BinaryIO) -> bool:
    try:
        return bool(fh.seekable())
    except (AttributeError, ValueError):
        return False
