"""`rcetl browse` in a real browser: headless Chromium (Debian's package) driven by Playwright.

Search by a phone number written three ways returns the same calls; a recording plays (the audio
element's clock moves); a fax PDF renders in Chromium's PDF viewer; a hostile name is text."""

from __future__ import annotations

import os
import shutil
import sqlite3

import pytest

from tests.services import require_module, unavailable

from .conftest import Served, make_app, serve
from .test_browse import HOSTILE, FakeIndex, a_number, calls_with_number, hostile_hit, three_ways

CHROMIUM = os.environ.get("RCETL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
#: Chromium's built-in PDF viewer: a PDF in a frame is rendered by this extension.
PDF_VIEWER = "chrome-extension://mhjfbmdgcfjbbpaeojofohoefgiehjai/"


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    if CHROMIUM is None:
        unavailable("headless Chromium is not installed (Debian: apt-get install -y chromium; or set RCETL_CHROMIUM)")
    sync_api = require_module("playwright.sync_api")  # a test dependency: missing, a failure on CI
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"])
        try:
            yield b
        finally:
            b.close()


def test_search_by_a_number_written_three_ways_in_the_form(browser, served: Served) -> None:  # noqa: ANN001
    number = a_number(served)
    expected = calls_with_number(served, number)
    page = browser.new_page()
    for written in three_ways(number):
        page.goto(served.url + "/")
        page.fill("input[name=phone]", written)
        page.click("button[type=submit]")
        page.wait_for_selector("table[data-kind=calls]")
        ids = page.eval_on_selector_all("table[data-kind=calls] tbody tr[data-id]", "rows => rows.map(r => r.dataset.id)")
        assert set(ids) == expected, written
    page.close()


def test_a_recording_plays(browser, served: Served) -> None:  # noqa: ANN001
    db = sqlite3.connect(served.pipeline.parent / "demo-archive" / "archive.db")
    account, call_id = db.execute("select account, call_id from rc_recordings where blob_status = 'stored' "
                                  "order by content_type desc limit 1").fetchone()
    page = browser.new_page()
    page.goto(f"{served.url}/call/{account}/{call_id}")
    page.wait_for_selector("audio")
    page.eval_on_selector("audio", "a => { a.muted = true; return a.play(); }")
    # polled from here: the page's CSP (script-src 'self') forbids Playwright's string predicates
    for _ in range(75):
        if page.eval_on_selector("audio", "a => a.currentTime") > 0:
            break
        page.wait_for_timeout(200)
    assert page.eval_on_selector("audio", "a => a.currentTime") > 0
    assert page.eval_on_selector("audio", "a => a.error") is None
    page.close()


def test_a_fax_pdf_renders(browser, served: Served) -> None:  # noqa: ANN001
    db = sqlite3.connect(served.pipeline.parent / "demo-archive" / "archive.db")
    account, message_id = db.execute(
        "select m.account, m.id from rc_messages m join rc_attachments a on a.account = m.account and "
        "a.message_id = m.id where m.type = 'Fax' and a.content_type = 'application/pdf' "
        "and a.blob_status = 'stored' limit 1").fetchone()
    page = browser.new_page()
    page.goto(f"{served.url}/message/{account}/{message_id}")
    page.wait_for_selector("iframe.pdf")
    for _ in range(50):
        if any(f.url.startswith(PDF_VIEWER) for f in page.frames):
            break
        page.wait_for_timeout(200)
    assert any(f.url.startswith(PDF_VIEWER) for f in page.frames), [f.url for f in page.frames]
    page.close()


def test_a_hostile_name_shows_as_text(browser) -> None:  # noqa: ANN001
    url, server = serve(make_app(FakeIndex([hostile_hit()])))
    page = browser.new_page()
    alerts: list[str] = []
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    try:
        page.goto(url + "/?phone=%2B16505550123")
        cell = page.inner_text("table[data-kind=calls] td.party")
        assert HOSTILE.split("&")[0] in cell
        assert page.eval_on_selector_all("table[data-kind=calls] img, table[data-kind=calls] b", "e => e.length") == 0
        assert alerts == []
    finally:
        page.close()
        server.shutdown()
