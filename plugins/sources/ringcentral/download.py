"""Stream a binary (recording audio, message attachment) into the engine's append-only file.

Chunks of 1 MiB go straight to ``out``: no file is ever held in memory. A connection dropped
mid-body is resumed with ``Range: bytes=<written>-``; the server must answer 206 from exactly that
offset, because bytes already written cannot be taken back. Every body is checked against its
Content-Length, so a short or long body never passes as a complete file.
"""

from __future__ import annotations

import logging
import re

import requests
import urllib3.exceptions

import rcetl

from .api_errors import ApiError
from .http import PRIORITY_DOWNLOAD, ApiClient

log = logging.getLogger(__name__)

CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_BODY_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.HTTPError,
)


def download(client: ApiClient, url: str, out: rcetl.BlobOutput, *, what: str, priority: int = PRIORITY_DOWNLOAD) -> int:
    """Write the content at ``url`` to ``out``; return the number of bytes written.

    Raises ItemGone on 404 (retention), TransientError when the transfer cannot be completed or
    resumed, PermanentError on other refusals.
    """
    written = 0
    total: int | None = None
    drops = 0
    while True:
        headers = {"Accept-Encoding": "identity"}  # count the bytes the server sends, not decoded ones
        if written:
            headers["Range"] = f"bytes={written}-"
        try:
            response = client.request("GET", url, headers=headers, stream=True, priority=priority)
        except ApiError as exc:
            if exc.status == 404 or exc.code == "CMN-102":
                raise rcetl.ItemGone(f"{what} is no longer held by RingCentral ({exc.code or exc.status})") from exc
            if exc.status == 416 and written:
                raise rcetl.TransientError(f"{what}: server refused to resume at byte {written}") from exc
            raise
        with response:
            expected = _expected_length(response, written, what)
            if not written and hasattr(out, "content_type"):
                # The listing cannot say whether a recording is MP3 or WAV: the response can.
                out.content_type = response.headers.get("Content-Type") or out.content_type
            if total is None:
                total = written + expected if expected is not None else None
                if total is not None and hasattr(out, "content_length"):
                    out.content_length = total  # what the engine's content check holds the body to
            received = 0
            cap = client.max_download_bytes
            if total is not None and total > cap:
                raise rcetl.PermanentError(
                    f"{what}: announced {total} bytes, more than max_download_bytes ({cap}); not downloaded",
                    hint="raise the connection's max_download_bytes if such files are real",
                )
            try:
                for chunk in response.iter_content(CHUNK):
                    client.stop.check()  # a stopping run does not wait for the end of a large file
                    if written + len(chunk) > cap:
                        # A body that never ends (or is far larger than any real file) is cut here.
                        raise rcetl.PermanentError(
                            f"{what}: more than max_download_bytes ({cap}) sent; download stopped",
                            hint="raise the connection's max_download_bytes if such files are real",
                        )
                    out.write(chunk)
                    received += len(chunk)
                    written += len(chunk)
                    if expected is not None and received > expected:
                        raise rcetl.TransientError(f"{what}: body longer than its Content-Length {expected}")
            except _BODY_ERRORS as exc:
                drops += 1
                if drops > client.max_retries:
                    raise rcetl.TransientError(f"{what}: connection dropped {drops} times; last at byte {written}") from exc
                log.info("%s: connection dropped at byte %d (%s); resuming", what, written, type(exc).__name__)
                client._sleep(client.backoff_delay(drops))
                continue
        if expected is not None and received < expected:
            # Ended cleanly but short (a proxy that closed early): resume like a drop.
            drops += 1
            if drops > client.max_retries:
                raise rcetl.TransientError(f"{what}: body shorter than its Content-Length ({received} < {expected})")
            continue
        if total is not None and written != total:
            raise rcetl.TransientError(f"{what}: received {written} bytes, expected {total}")
        return written


def _expected_length(response: requests.Response, written: int, what: str) -> int | None:
    """Bytes this response should carry; checks that a resumed response starts where we stopped."""
    if written:
        if response.status_code != 206:
            # A 200 restarts from byte 0, which an append-only writer cannot accept.
            raise rcetl.TransientError(
                f"{what}: server ignored Range after a dropped connection; the whole item must be retried"
            )
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != written:
            raise rcetl.TransientError(
                f"{what}: resumed at the wrong offset ({response.headers.get('Content-Range')!r}, wanted {written})"
            )
    length = response.headers.get("Content-Length")
    if length is None or not length.isdigit():
        return None
    return int(length)
