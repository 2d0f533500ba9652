"""Binary contents (recordings, voicemail, fax pages, MMS images, text) made on demand.

A :class:`Blob` is a recipe, not bytes: a small head, a periodic body of any length and a tail.
Any byte range can be produced without building the rest, so a 1 GB recording streams in
constant memory, and the same (seed, id) always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import math
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache, partial

from .ids import det_int

CHUNK = 256 * 1024
SAMPLE_RATE = 8000  # 8 kHz 8-bit mono: telephone quality, 8 KB a second
MP3_FRAME_SAMPLES = 576
# MPEG-2.5 Layer III, 8 kbit/s, 8000 Hz, mono, no CRC: 72-byte frames. Zero side information
# means "no audio data", which every decoder plays as silence.
_MP3_FRAME = bytes([0xFF, 0xE3, 0x18, 0xC0]) + bytes(68)


@dataclass(frozen=True)
class Blob:
    content_type: str
    head: bytes = b""
    # The repeating body, or a function making it: built only when bytes are actually read, so
    # knowing a blob's size (for the JSON) costs nothing.
    period: bytes | Callable[[], bytes] = b""
    body_len: int = 0
    shift: int = 0
    tail: bytes = b""
    _sha: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def size(self) -> int:
        return len(self.head) + self.body_len + len(self.tail)

    def iter_range(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield bytes [start, end) in chunks of at most CHUNK bytes."""
        end = self.size if end is None else min(end, self.size)
        pos = start
        h, b = len(self.head), len(self.head) + self.body_len
        while pos < end:
            if pos < h:
                stop = min(end, h)
                yield self.head[pos:stop]
            elif pos < b:
                stop = min(end, b, pos + CHUNK)
                yield self._body(pos - h, stop - h)
            else:
                stop = end
                yield self.tail[pos - b : stop - b]
            pos = stop

    def _body(self, a: int, z: int) -> bytes:
        period = self.period() if callable(self.period) else self.period
        n = len(period)
        off = (a + self.shift) % n
        need = z - a
        reps = (off + need) // n + 1
        return (period * reps)[off : off + need]

    def read(self) -> bytes:
        return b"".join(self.iter_range())

    def sha256(self) -> str:
        if "v" not in self._sha:
            h = hashlib.sha256()
            for chunk in self.iter_range():
                h.update(chunk)
            self._sha["v"] = h.hexdigest()
        return self._sha["v"]


_SINE = [128 + int(70 * math.sin(2 * math.pi * i / SAMPLE_RATE)) for i in range(SAMPLE_RATE)]


@lru_cache(maxsize=1024)
def _tone_second(freq: int) -> bytes:
    """One second of an unsigned 8-bit sine at an integer frequency: it repeats seamlessly."""
    return bytes(_SINE[(i * freq) % SAMPLE_RATE] for i in range(SAMPLE_RATE))


def wav(seed: object, ident: object, seconds: float, content_type: str, total_bytes: int | None = None) -> Blob:
    """A playable PCM WAV: a tone whose pitch and phase depend on (seed, id)."""
    data_len = max(0, total_bytes - 44) if total_bytes is not None else max(1, int(seconds * SAMPLE_RATE))
    h = det_int(seed, "wav", ident)
    head = b"RIFF" + struct.pack("<I", 36 + data_len) + b"WAVE"
    head += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, SAMPLE_RATE, SAMPLE_RATE, 1, 8)
    head += b"data" + struct.pack("<I", data_len)
    return Blob(content_type, head=head, period=partial(_tone_second, 200 + h % 700), body_len=data_len, shift=(h >> 16) % SAMPLE_RATE)


def mp3(seed: object, ident: object, seconds: float) -> Blob:
    """A valid MP3 of silent frames, tagged with the id so each recording has its own bytes."""
    frames = max(1, math.ceil(seconds * SAMPLE_RATE / MP3_FRAME_SAMPLES))
    text = f"rcetl sandbox recording {ident} {det_int(seed, 'mp3', ident):016x}".encode()
    frame = b"TIT2" + struct.pack(">I", len(text) + 1) + b"\x00\x00" + b"\x00" + text
    size = len(frame)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    head = b"ID3\x03\x00\x00" + syncsafe + frame
    return Blob("audio/mpeg", head=head, period=_MP3_FRAME, body_len=frames * len(_MP3_FRAME))


def pdf(seed: object, ident: object, pages: int) -> Blob:
    """A small valid PDF with one line of text per page (a received fax)."""
    pages = max(1, pages)
    objs: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(pages))
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    tag = det_int(seed, "pdf", ident) % 10**8
    for i in range(pages):
        text = f"BT /F1 18 Tf 72 720 Td (Fax {ident} page {i + 1} of {pages} ref {tag:08d}) Tj ET".encode()
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {5 + 2 * i} 0 R "
                    "/Resources << /Font << /F1 3 0 R >> >> >>".encode())
        objs.append(b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return Blob("application/pdf", head=bytes(out))


def png(seed: object, ident: object, width: int = 32, height: int = 32) -> Blob:
    """A valid PNG of a solid colour chosen by (seed, id): an MMS picture."""
    h = det_int(seed, "png", ident)
    pixel = bytes([(h >> 8) & 255, (h >> 16) & 255, (h >> 24) & 255])
    raw = b"".join(b"\x00" + pixel * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    body += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    return Blob("image/png", head=body)


def text(content: str) -> Blob:
    return Blob("text/plain", head=content.encode("utf-8"))


def raw(data: bytes, content_type: str) -> Blob:
    return Blob(content_type, head=data)


def filler(seed: object, ident: object, size: int, content_type: str) -> Blob:
    """``size`` deterministic bytes of no particular format (for --data entries given by size)."""
    def period() -> bytes:
        return b"".join(det_int(seed, "fill", ident, i).to_bytes(8, "big") for i in range(512))

    return Blob(content_type, period=period, body_len=size)


# --- formats a fax or an MMS really arrives in -----------------------------------------------------
# Written by hand (a few dozen bytes of headers each) so the sandbox needs no imaging library; each
# is a complete, decodable file, and the (seed, id) tag makes every binary's bytes its own.


def tiff(seed: object, ident: object, pages: int, fine: bool = True) -> Blob:
    """A multi-page bilevel TIFF (uncompressed, one strip a page), as faxes are stored: 1728
    pixels wide like a G3 fax line; 204x196 dpi (fine) or 204x98 (normal)."""
    width, height = 1728, 64
    row = width // 8
    pages = max(1, pages)
    tag = det_int(seed, "tiff", ident)
    out = bytearray(b"II*\x00\x00\x00\x00\x00")  # little-endian; first IFD offset patched below
    link = 4  # where the previous "next IFD" offset lives
    for page in range(pages):
        # A page of white with a seeded bar pattern: the page's own bytes.
        bits = bytes(((tag >> ((page + i) % 56)) & 0xFF) if (i // row) % 8 == 0 else 0 for i in range(row * height))
        strip = len(out)
        out += bits
        res = len(out)
        out += struct.pack("<IIII", 204, 1, 196 if fine else 98, 1)
        if len(out) % 2:
            out += b"\x00"
        entries = [(256, 4, width), (257, 4, height), (258, 3, 1), (259, 3, 1), (262, 3, 0), (273, 4, strip),
                   (277, 3, 1), (278, 4, height), (279, 4, len(bits)), (282, 5, res), (283, 5, res + 8),
                   (296, 3, 2), (297, 3, page | (pages << 16))]
        ifd = len(out)
        struct.pack_into("<I", out, link, ifd)
        out += struct.pack("<H", len(entries))
        for code, kind, value in entries:
            out += struct.pack("<HHII", code, kind, 2 if code == 297 else 1, value)
        link = len(out)
        out += b"\x00\x00\x00\x00"
    return Blob("image/tiff", head=bytes(out))


def gif(seed: object, ident: object) -> Blob:
    """A 1x1 GIF89a whose colour and comment come from (seed, id)."""
    h = det_int(seed, "gif", ident)
    note = f"rcetl sandbox {ident} {h:016x}".encode()
    body = b"GIF89a" + struct.pack("<HH", 1, 1) + b"\x80\x00\x00" + h.to_bytes(8, "big")[:3] + b"\x00\x00\x00"
    body += b"\x21\xfe" + bytes([len(note)]) + note + b"\x00"  # comment extension
    body += b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00" + b"\x02\x02\x44\x01\x00" + b"\x3b"
    return Blob("image/gif", head=body)


def jpeg(seed: object, ident: object) -> Blob:
    """An 8x8 grey baseline JPEG (one block, all coefficients zero), tagged by a COM segment."""
    note = f"rcetl sandbox {ident} {det_int(seed, 'jpeg', ident):016x}".encode()

    def seg(marker: int, data: bytes) -> bytes:
        return struct.pack(">HH", 0xFF00 | marker, len(data) + 2) + data

    one_code = bytes([1]) + bytes(15) + b"\x00"  # a single 1-bit Huffman code for symbol 0
    body = b"\xff\xd8" + seg(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00") + seg(0xFE, note)
    body += seg(0xDB, b"\x00" + bytes([1]) * 64) + seg(0xC0, b"\x08\x00\x08\x00\x08\x01\x01\x11\x00")
    body += seg(0xC4, b"\x00" + one_code) + seg(0xC4, b"\x10" + one_code)
    body += seg(0xDA, b"\x01\x01\x00\x00\x3f\x00") + b"\x3f" + b"\xff\xd9"  # DC diff 0, then EOB; 1-padded
    return Blob("image/jpeg", head=body)
