"""rcetl.content: a body is accepted only if it is what its metadata announced.

The sample files are made here with the standard library and the formats' published signatures
(not with the sandbox's generators), so the check and the simulator never share an assumption.
"""

from __future__ import annotations

import io
import struct
import wave
import zlib

import pytest

import rcetl
from rcetl.content import EvidenceRecorder, check_content, check_stored, describe_head, sniff


def wav_bytes(seconds: float = 0.5) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes([128]) * int(8000 * seconds))
    return buf.getvalue()


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"\x00\xff\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
MP3_ID3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes([0xFF, 0xFB, 0x90, 0x64]) + bytes(400)
MP3_FRAMES = bytes([0xFF, 0xE3, 0x18, 0xC0]) + bytes(68) + bytes([0xFF, 0xE3, 0x18, 0xC0]) + bytes(68)
OGG = b"OggS\x00\x02" + bytes(22) + b"\x01vorbis" + bytes(200)
TIFF = b"II*\x00\x08\x00\x00\x00" + bytes(200)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + bytes(200) + b"\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
LOGIN_PAGE = b"<!DOCTYPE html>\n<html><head><title>Sign In</title></head><body>maintenance</body></html>"
ERROR_JSON = b'{"errorCode":"CMN-211","message":"Service Temporarily Unavailable"}'

RECORDING = rcetl.BlobRef("recording-1", "u", "recording", content_type="audio/mpeg", accept=("audio/*",))
FAX = rcetl.BlobRef("attachment-1-1", "u", "attachment", content_type="application/pdf",
                    accept=("application/pdf", "image/tiff"))


def ev(data: bytes, served: str | None = None, length: int | None = None) -> rcetl.Evidence:
    rec = EvidenceRecorder()
    for i in range(0, len(data), 7):  # in odd chunks, as a network delivers them
        rec.update(data[i:i + 7])
    return rec.evidence(served, length)


@pytest.mark.parametrize(("body", "served"), [
    (wav_bytes(), "audio/wav"), (wav_bytes(), "audio/x-wav"), (MP3_ID3, "audio/mpeg"), (MP3_FRAMES, "audio/mpeg"),
    (OGG, "audio/ogg"), (MP3_ID3, "application/octet-stream"), (wav_bytes(), None), (MP3_ID3, "audio/mpeg; charset=x"),
])
def test_real_audio_is_a_recording(body: bytes, served: str | None) -> None:
    verdict = check_content(RECORDING, ev(body, served, len(body)))
    assert verdict.ok, verdict.problems


@pytest.mark.parametrize(("body", "served", "problem"), [
    (LOGIN_PAGE, "text/html; charset=utf-8", "the server sent Content-Type text/html"),
    (ERROR_JSON, "application/json", "the server sent Content-Type application/json"),
    (LOGIN_PAGE, "audio/mpeg", "the bytes are text/html"),  # a lying Content-Type does not help
    (ERROR_JSON, "audio/mpeg", "the bytes are application/json"),
    (b"", "audio/mpeg", "the body is empty"),
    (PDF, "application/octet-stream", "the bytes are application/pdf"),
    (bytes(range(256)) * 4, "audio/mpeg", "match no signature of the expected type"),
    (wav_bytes()[:300], "audio/wav", "truncated"),  # cut, with an honest Content-Length for what came
])
def test_what_is_not_audio_is_refused_as_a_recording(body: bytes, served: str, problem: str) -> None:
    verdict = check_content(RECORDING, ev(body, served, len(body)))
    assert not verdict.ok
    assert any(problem in p for p in verdict.problems), verdict.problems


def test_the_message_says_what_was_expected_what_came_and_the_first_bytes() -> None:
    verdict = check_content(RECORDING, ev(LOGIN_PAGE, "text/html", len(LOGIN_PAGE)))
    message = verdict.message("recording 42")
    assert message.startswith("recording 42: content check failed:")
    assert "expected audio/*" in message and "served as text/html" in message
    assert 'first bytes: "<!DOCTYPE html>\\x0a<html>' in message


def test_first_bytes_are_shown_sanitised() -> None:
    shown = describe_head(b"\x1b[31mred\x07\r\n" + b"A" * 100)
    assert "\x1b" not in shown and "\x07" not in shown and "\n" not in shown
    assert shown.startswith('"\\x1b[31mred\\x07\\x0d\\x0a') and shown.endswith('..."')
    assert describe_head(b"") == "(none)"


@pytest.mark.parametrize(("body", "ok"), [
    (PDF, True), (TIFF, True), (PDF[:40], False), (LOGIN_PAGE, False), (png_bytes(), False), (MP3_ID3, False),
])
def test_a_fax_is_a_pdf_or_a_tiff_and_whole(body: bytes, ok: bool) -> None:
    assert check_content(FAX, ev(body, None, len(body))).ok is ok


@pytest.mark.parametrize(("declared", "body", "ok"), [
    ("image/png", png_bytes(), True), ("image/jpeg", JPEG, True), ("image/jpg", JPEG, True),
    ("image/gif", GIF, True), ("image/png", JPEG, False), ("image/jpeg", LOGIN_PAGE, False),
    # A type with no known signature cannot be checked by its bytes, but an error page is never it.
    ("application/vnd.ms-excel.custom", b"\x01\x02custom", True),
    ("application/vnd.ms-excel.custom", LOGIN_PAGE, False),
])
def test_an_attachment_is_its_declared_type(declared: str, body: bytes, ok: bool) -> None:
    ref = rcetl.BlobRef("attachment-9-1", "u", "attachment", content_type=declared)
    served = "text/html" if body is LOGIN_PAGE else declared
    assert check_content(ref, ev(body, served, len(body))).ok is ok


@pytest.mark.parametrize(("body", "size", "ok"), [
    ("Hello 👋 wörld".encode(), None, True), (b"", None, True),  # an SMS with no text
    (b"", 12, False), (b"line\r\n\tindented\x0c", None, True),
    (png_bytes(), None, False), (b"\x00\x01\x02binary", None, False), (b"\xff\xfe not utf-8", None, False),
])
def test_text_attachments_are_text(body: bytes, size: int | None, ok: bool) -> None:
    ref = rcetl.BlobRef("attachment-9-2", "u", "attachment", content_type="text/plain", size=size, accept=("text/*",))
    assert check_content(ref, ev(body, "text/plain", len(body))).ok is ok


def test_a_multibyte_character_cut_at_the_sample_end_is_still_text() -> None:
    body = "é".encode() * 5000  # 10,000 bytes: the 8 KiB sample ends inside no character, or inside one
    ref = rcetl.BlobRef("a", "u", "attachment", content_type="text/plain", accept=("text/*",))
    assert check_content(ref, ev(body + b"x", "text/plain")).ok
    assert check_content(ref, ev(b"x" + body, "text/plain")).ok


def test_sizes_must_match_the_declared_size_and_the_content_length() -> None:
    body = png_bytes()
    ref = rcetl.BlobRef("a", "u", "attachment", content_type="image/png", size=len(body) + 10)
    verdict = check_content(ref, ev(body, "image/png", len(body)))
    assert [p for p in verdict.problems if f"declared {len(body) + 10} bytes, {len(body)} arrived" in p]
    unsized = rcetl.BlobRef("a", "u", "attachment", content_type="image/png")
    verdict = check_content(unsized, ev(body, "image/png", len(body) * 2))
    assert [p for p in verdict.problems if "Content-Length announced" in p]
    assert check_content(unsized, ev(body, "image/png", len(body))).ok


def test_sniff_names_error_bodies_and_knows_nothing_of_random_bytes() -> None:
    assert sniff(LOGIN_PAGE) == "text/html"
    assert sniff(b"  \n" + ERROR_JSON) == "application/json"
    assert sniff(bytes(range(7, 200))) is None
    assert sniff(wav_bytes()) == "audio/x-wav" and sniff(MP3_FRAMES) == "audio/mpeg"


def test_stored_files_are_checked_from_their_first_and_last_bytes(tmp_path) -> None:
    good, planted = tmp_path / "good.wav", tmp_path / "planted.wav"
    good.write_bytes(wav_bytes(3))
    planted.write_bytes(LOGIN_PAGE)
    with good.open("rb") as fh:
        assert check_stored(RECORDING, fh).ok
    with planted.open("rb") as fh:
        verdict = check_stored(RECORDING, fh)
    assert not verdict.ok and "the bytes are text/html" in verdict.problems
    # Not seekable (a download stream): read through, same verdict.
    assert not check_stored(RECORDING, _Unseekable(LOGIN_PAGE)).ok
    assert check_stored(RECORDING, _Unseekable(wav_bytes())).ok


class _Unseekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._data.read(n)
