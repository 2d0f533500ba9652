"""Small, valid media files for tests that write their own RingCentral-shaped data: each passes the
content check of its type (rcetl.content) and carries a tag so no two are alike."""

from __future__ import annotations

import base64
import struct
from typing import Any


def wav_bytes(seconds: int, tone: int) -> bytes:
    """A PCM WAV (8 kHz, 8-bit mono) whose samples depend on ``tone``."""
    data = bytes((128 + (i * tone) % 64) for i in range(8000 * seconds))
    head = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    head += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 8000, 1, 8)
    return head + b"data" + struct.pack("<I", len(data)) + data


def mp3_bytes(tag: str, frames: int = 40) -> bytes:
    """An MP3: an ID3v2 title frame naming ``tag``, then silent MPEG-2.5 Layer III frames."""
    text = tag.encode()
    frame = b"TIT2" + struct.pack(">I", len(text) + 1) + b"\x00\x00\x00" + text
    size = len(frame)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x03\x00\x00" + syncsafe + frame + (bytes([0xFF, 0xE3, 0x18, 0xC0]) + bytes(68)) * frames


def pdf_bytes(text: str) -> bytes:
    body = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    return (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
            b"3 0 obj << /Length " + str(len(body)).encode() + b" >> stream\n" + body +
            b"\nendstream endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


def jpeg_bytes(tag: str) -> bytes:
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + tag.encode() + b"\xff\xd9"


def content(data: bytes, content_type: str) -> dict[str, Any]:
    """The sandbox ``--data`` loader's form of a binary's bytes."""
    return {"base64": base64.b64encode(data).decode(), "content_type": content_type}
