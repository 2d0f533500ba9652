"""The HTML run report of a demo-like run, opened in headless Chromium (Debian package ``chromium``):
the DOM the browser builds shows the run summary's figures, and the screenshot is a real page."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.services import unavailable

CHROMIUM = os.environ.get("RCETL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(autouse=True)
def _chromium_installed() -> None:
    # .ci/services.sh installs it: missing, it is a skip on a laptop and a failure on CI.
    if CHROMIUM is None:
        unavailable("headless Chromium is not installed (Debian: apt-get install -y chromium; or set RCETL_CHROMIUM)")


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--window-size=1200,1600", *args],
        capture_output=True, text=True, timeout=120)


class Figures(HTMLParser):
    """Every element with a ``data-value``: (its data-* attributes, its text)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, str]] = []
        self._open: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        data = {k[5:]: v or "" for k, v in attrs if k.startswith("data-")}
        if tag == "tr":
            self._row = data
        if "value" in data:
            data = {**getattr(self, "_row", {}), **data, "tag": tag, "text": ""}
            self.found.append(data)
            self._open.append(data)

    def handle_data(self, text: str) -> None:
        for d in self._open:
            d["text"] += text

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1]["tag"] == tag:
            self._open.pop()


def png_facts(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct scanlines) of a PNG, with the standard library only."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, bpp = 8, b"", 0, 0, 4
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", chunk[:10])
            bpp = {2: 3, 6: 4, 0: 1, 4: 2}[color] * depth // 8
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp + 1
    rows = {raw[i * stride + 1:(i + 1) * stride] for i in range(height)}  # filtered rows: a lower bound
    return width, height, len(rows)


def test_the_report_opens_in_chromium_and_shows_the_summary(rcetl_pipeline, tmp_path: Path) -> None:
    run = rcetl_pipeline(sinks={"archive": {"plugin": "sqlite", "url": "archive.db"},
                                "files": {"plugin": "filesystem", "path": "files"}},
                         observers={"report": {"path": "reports"}})
    summary = run.summary
    assert summary.ok, summary.errors
    page = run.folder / "reports" / "latest.html"

    dom = chromium(["--dump-dom", page.as_uri()], tmp_path / "profile-dom")
    assert dom.returncode == 0 and "<svg" in dom.stdout, dom.stderr[-2000:]
    parser = Figures()
    parser.feed(dom.stdout)
    shown = parser.found

    def one(**match: str) -> dict[str, str]:
        hits = [d for d in shown if all(d.get(k) == v for k, v in match.items())]
        assert len(hits) == 1, (match, hits)
        return hits[0]

    assert one(tag="span", value=summary.status)["text"] == summary.status
    assert int(one(total="records")["value"]) == sum(s.records for s in summary.streams.values())
    assert int(one(total="files")["value"]) == sum(s.files for s in summary.streams.values())
    assert int(one(total="bytes")["value"]) == sum(s.bytes for s in summary.streams.values())
    assert int(one(total="failed_items")["value"]) == summary.failed_items
    for stream, st in summary.streams.items():
        for field in ("records", "files", "bytes", "gone", "failed"):
            cell = one(stream=stream, field=field, tag="td")
            assert int(cell["value"]) == getattr(st, field), (stream, field)
        assert one(stream=stream, field="records", tag="td")["text"] == str(st.records)  # what a person reads
    for sink, st in summary.sinks.items():
        assert int(one(sink=sink, field="records", tag="td")["value"]) == st.records
        assert int(one(sink=sink, field="files", tag="td")["value"]) == st.files
    for conn, groups in summary.requests.items():
        for group, n in groups.items():
            assert int(one(connection=conn, group=group, field="requests")["value"]) == n
    bars = [d for d in shown if d["tag"] == "rect" and "stream" in d]
    assert sum(int(b["value"]) for b in bars) == sum(s.records for s in summary.streams.values())

    png = tmp_path / "report.png"
    shot = chromium([f"--screenshot={png}", page.as_uri()], tmp_path / "profile-shot")
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    width, height, distinct_rows = png_facts(png)
    assert (width, height) == (1200, 1600)
    assert png.stat().st_size > 20_000 and distinct_rows > 100, "the screenshot looks blank"
