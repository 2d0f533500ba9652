"""`rcetl browse` over HTTP: search by phone number in any format, details with every binary's
checksum and locations, Range requests, read-only routes, escaping, credentials, coverage.

Expected values come from the archive's raw JSON (what RingCentral sent) and the stored files'
bytes, not from the typed columns browse queries."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
import sqlalchemy as sa

from rcetl.plugins.browse.coverage import build as build_coverage
from rcetl.plugins.browse.query import DayCount, Hit, Page, parse_filters
from rcetl.plugins.browse.web import Binary, Credentials, _inline_type

from .conftest import Served, make_app, serve

ROW = re.compile(r'<tr data-id="([^"]+)"')


def db(served: Served) -> sqlite3.Connection:
    return sqlite3.connect(served.pipeline.parent / "demo-archive" / "archive.db")


def call_ids(html: str) -> list[str]:
    calls = html.split('data-kind="calls"', 1)[1].split("</table>", 1)[0]
    return ROW.findall(calls)


def three_ways(e164: str) -> list[str]:
    """+16505550123, (650) 555-0123 and 1 650 555 0123: how people write one US number."""
    digits = e164[2:]
    return [e164, f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", f"1 {digits[:3]} {digits[3:6]} {digits[6:]}"]


def calls_with_number(served: Served, e164: str) -> set[str]:
    """From the raw JSON: every call whose caller or callee is ``e164``."""
    out = set()
    for ident, raw in db(served).execute("select id, raw from rc_call_log"):
        data = json.loads(raw)
        numbers = {(data.get(side) or {}).get("phoneNumber") for side in ("from", "to")}
        if e164 in numbers:
            out.add(ident)
    return out


def a_number(served: Served) -> str:
    counts: dict[str, int] = {}
    for (raw,) in db(served).execute("select raw from rc_call_log"):
        data = json.loads(raw)
        for side in ("from", "to"):
            number = (data.get(side) or {}).get("phoneNumber") or ""
            if re.fullmatch(r"\+1\d{10}", number):
                counts[number] = counts.get(number, 0) + 1
    return max(counts, key=lambda n: counts[n])  # the busiest number: more than one call to compare


def test_a_phone_number_written_three_ways_finds_the_same_calls(served: Served) -> None:
    number = a_number(served)
    expected = calls_with_number(served, number)
    assert expected
    for written in three_ways(number):
        page = requests.get(served.url + "/", params={"phone": written, "limit": 200}, timeout=30)
        assert page.status_code == 200, page.text[:500]
        assert set(call_ids(page.text)) == expected, written


def test_phone_search_is_an_indexed_query_not_a_scan(served: Served) -> None:
    """The statement browse sends for a phone search uses the E.164 indexes (EXPLAIN QUERY PLAN)."""
    from rcetl.plugins.browse.sql_index import SqlArchiveIndex

    sink = next(iter(served.archive.record_sinks.values()))
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ANN202
        seen.append((statement, parameters))

    sa.event.listen(sink.engine, "before_cursor_execute", capture)
    try:
        SqlArchiveIndex(sink).search_calls(parse_filters({"phone": a_number(served)}))
    finally:
        sa.event.remove(sink.engine, "before_cursor_execute", capture)
    statement, params = seen[-1]
    with sink.engine.connect() as conn:
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params))
    assert "ix_call_from" in plan and "ix_call_to" in plan, plan
    assert "SCAN rc_call_log" not in plan.replace("USING INDEX", ""), plan


def test_a_recording_is_served_with_range_and_its_checksum(served: Served) -> None:
    account, call_id, archive = db(served).execute(
        "select account, call_id, archive from rc_recordings where blob_status = 'stored' limit 1").fetchone()
    blob = json.loads(archive)[0]
    path = Path(blob["locations"]["files"])
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == blob["sha256"]
    url = f"{served.url}/binary/call-log/{account}/{call_id}/{blob['blob_id']}"
    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["Content-Type"].startswith("audio/") and whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["X-Rcetl-SHA256"] == blob["sha256"]
    part = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=30)
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert requests.get(url, headers={"Range": f"bytes={len(data) + 10}-"}, timeout=30).status_code == 416
    page = requests.get(f"{served.url}/call/{account}/{call_id}", timeout=30).text
    assert blob["sha256"] in page and str(path) in page and "<audio" in page


def test_a_message_shows_each_attachment_with_its_own_bytes_and_links_its_conversation(served: Served) -> None:
    rows = db(served).execute("select account, id, archive, raw from rc_messages where attachment_count > 0").fetchall()
    assert rows
    for account, message_id, archive, raw in rows[:15]:
        page = requests.get(f"{served.url}/message/{account}/{message_id}", timeout=30)
        assert page.status_code == 200
        for blob in json.loads(archive):
            if blob["status"] != "stored":
                continue
            assert blob["sha256"] in page.text
            got = requests.get(f"{served.url}/binary/message-store/{account}/{message_id}/{blob['blob_id']}",
                               timeout=30)
            assert hashlib.sha256(got.content).hexdigest() == blob["sha256"]
        conversation = (json.loads(raw).get("conversation") or {}).get("id")
        if conversation:
            assert f"/thread/{account}/{conversation}" in page.text


def test_a_conversation_lists_exactly_its_messages(served: Served) -> None:
    by_conv: dict[tuple[str, str], set[str]] = {}
    for account, ident, raw in db(served).execute("select account, id, raw from rc_messages"):
        conv = (json.loads(raw).get("conversation") or {}).get("id")
        if conv:
            by_conv.setdefault((account, str(conv)), set()).add(str(ident))
    (account, conv), expected = max(by_conv.items(), key=lambda kv: len(kv[1]))
    page = requests.get(f"{served.url}/thread/{account}/{conv}", timeout=30).text
    assert set(ROW.findall(page)) == expected


def test_the_web_view_is_read_only_and_bad_input_is_a_clear_400(served: Served) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert requests.request(method, served.url + "/", timeout=30).status_code == 405
    bad = requests.get(served.url + "/", params={"phone": "not a number"}, timeout=30)
    assert bad.status_code == 400 and "is not a phone number" in bad.text
    assert requests.get(served.url + "/", params={"since": "March"}, timeout=30).status_code == 400
    assert requests.get(served.url + "/binary/call-log/x/../../etc/passwd", timeout=30).status_code == 404
    assert requests.get(served.url + "/runs/../../state.db.html", timeout=30).status_code == 404


class FakeIndex:
    """An index that answers with given hits (the store itself is tested above)."""

    def __init__(self, hits: list[Hit], days: list[DayCount] | None = None,
                 keys: list[tuple[str, str, str, str]] | None = None) -> None:
        self.hits, self._days, self._keys = hits, days or [], keys or []

    def search_calls(self, filters):  # noqa: ANN001, ANN201
        return Page(self.hits)

    def search_messages(self, filters):  # noqa: ANN001, ANN201
        return Page([])

    def call(self, account, call_id):  # noqa: ANN001, ANN201
        return None

    def message(self, account, message_id):  # noqa: ANN001, ANN201
        return None

    def thread(self, account, conversation_id, limit=200):  # noqa: ANN001, ANN201
        return []

    def days(self, since, until):  # noqa: ANN001, ANN201
        return self._days

    def day_keys(self, since, until):  # noqa: ANN001, ANN201
        return iter(self._keys)


HOSTILE = '<img src=x onerror="alert(1)">Eve & <b>Mallory</b>'


def hostile_hit() -> Hit:
    return Hit(stream="call-log", id="X1", account="1", time=datetime(2026, 3, 1), type="Voice",
               direction="Inbound", from_number="+16505550123", from_name=HOSTILE, to_number=None, to_name=None)


def test_names_from_the_api_are_text_not_markup() -> None:
    url, server = serve(make_app(FakeIndex([hostile_hit()])))
    try:
        page = requests.get(url + "/", params={"phone": "+16505550123"}, timeout=30)
    finally:
        server.shutdown()
    assert HOSTILE not in page.text and "<img src=x" not in page.text
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;Eve &amp; &lt;b&gt;Mallory&lt;/b&gt;" in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_only_media_types_that_cannot_run_script_are_shown_inline() -> None:
    def inline(media: str | None) -> str | None:
        return _inline_type(Binary("b", "attachment", media, 1, None, "stored"))

    assert inline("audio/mpeg") == "audio/mpeg" and inline("audio/x-wav") == "audio/wav"
    assert inline("application/pdf") == "application/pdf" and inline("image/png") == "image/png"
    for hostile in ("text/html", "image/svg+xml", "application/xhtml+xml", "text/html; x=audio/mpeg",
                    "audio/mpeg\r\nSet-Cookie: a=b", None, ""):
        assert inline(hostile) is None, hostile


def test_credentials_are_required_when_configured() -> None:
    creds = Credentials(token="s3cret-token", user="ann", password="pw")
    url, server = serve(make_app(FakeIndex([]), credentials=creds))
    try:
        assert requests.get(url + "/", timeout=30).status_code == 401
        assert requests.get(url + "/", headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
        assert requests.get(url + "/", auth=("ann", "wrong"), timeout=30).status_code == 401
        assert requests.get(url + "/", headers={"Authorization": "Bearer s3cret-token"}, timeout=30).status_code == 200
        assert requests.get(url + "/", auth=("ann", "pw"), timeout=30).status_code == 200
    finally:
        server.shutdown()


def test_binding_beyond_loopback_without_credentials_exits_2(served: Served) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCETL_BROWSE_")}
    done = subprocess.run([sys.executable, "-m", "rcetl.cli.main", "browse", str(served.pipeline), "--host",
                           "0.0.0.0", "--port", "0"], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2
    assert "no credentials are set" in done.stderr and "RCETL_BROWSE_TOKEN" in done.stderr


def test_coverage_flags_failed_days_and_what_ringcentral_deletes_within_a_week(tmp_path: Path) -> None:
    from rcetl.state import StateStore

    now = datetime.now(timezone.utc)
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    soon = now - timedelta(days=86)  # a recording of 86 days ago: RingCentral deletes it in 4 days
    late = now - timedelta(days=10)  # a call-log record: deleted in ~355 days, but failed
    state.add_failed("t", "recording", "1", "rec-1", {"occurred_at": soon.isoformat(), "data": {}}, "HTTP 503")
    state.add_failed("t", "call-log", "1", "call-1", {"occurred_at": late.isoformat(), "data": {}}, "HTTP 500")
    two, three = (now - timedelta(days=2)).date().isoformat(), (now - timedelta(days=3)).date().isoformat()
    keys = [("call-log", "1", f"c{i}", two) for i in range(12)] + [("call-log", "1", f"d{i}", three) for i in range(3)]
    index = FakeIndex([], days=[DayCount(two, "call-log", 12), DayCount(three, "call-log", 3)], keys=keys)
    # verify proved every call of two days ago, one of three days ago
    state.record_proofs("t", [("call-log", "1", k, "digest", "read-back") for _, _, k, day in keys
                              if day == two or k == "d0"])
    url, server = serve(make_app(index, state=state))
    try:
        page = requests.get(url + "/coverage", timeout=30).text
    finally:
        server.shutdown()
        state.close()
    assert f'data-day="{soon.date().isoformat()}" data-status="urgent"' in page
    assert f'data-day="{late.date().isoformat()}" data-status="failed"' in page
    assert f'data-day="{two}" data-status="verified"' in page
    assert f'data-day="{three}" data-status="archived"' in page and 'data-proven="1"' in page
    assert 'data-days-left="4"' in page and "recording &#39;rec-1&#39;" in page


def test_coverage_counts_days_from_the_archive(served: Served) -> None:
    cov = build_coverage(__import__("rcetl.plugins.browse.sql_index", fromlist=["x"]).SqlArchiveIndex(
        next(iter(served.archive.record_sinks.values()))), [], days=400)
    counted = sum(d.counts.get("call-log", 0) for d in cov.days)
    cutoff = (datetime.now(timezone.utc) - timedelta(days=399)).date().isoformat()
    expected = sum(1 for (raw,) in db(served).execute("select raw from rc_call_log")
                   if json.loads(raw)["startTime"][:10] >= cutoff)
    assert counted == expected > 0


def test_coverage_after_verify_shows_proven_days(served: Served) -> None:
    env = {**os.environ, "RCETL_HOME": str(served.pipeline.parent / "home")}
    done = subprocess.run([sys.executable, "-m", "rcetl.cli.main", "verify", str(served.pipeline)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    page = requests.get(served.url + "/coverage", params={"days": 400}, timeout=60).text
    assert 'data-status="verified"' in page and 'data-status="failed"' not in page
    assert "Last proof by" in page
