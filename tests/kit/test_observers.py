"""The built-in observers: the run report (JSON + HTML) and the webhook/e-mail notifier, against a
real run of the sandbox, a local HTTP server and a local SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rcetl import observers
from rcetl.observers.collector import RunCollector
from rcetl.observers.report import build_report, render_html, write_report
from rcetl.records import Record
from rcetl.run import RunInfo, RunSummary, StreamStats
from tests.services import require_module


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"body": json.loads(body), "type": self.headers["Content-Type"], "path": self.path})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[Any], list[tuple[str, str]]]]:
    aiosmtpd = require_module("aiosmtpd.controller")
    from aiosmtpd.smtp import AuthResult, LoginPassword

    messages: list[Any] = []
    logins: list[tuple[str, str]] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001
            messages.append(envelope)
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001
        if isinstance(auth_data, LoginPassword):
            logins.append((auth_data.login.decode(), auth_data.password.decode()))
            return AuthResult(success=auth_data.password == b"s3cret-pass")
        return AuthResult(success=False)

    with socket.socket() as probe:  # the controller checks readiness by connecting: it needs a real port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = aiosmtpd.Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=authenticator,
                                     auth_require_tls=False)
    controller.start()
    try:
        yield port, messages, logins
    finally:
        controller.stop()


def _run(tmp_path: Path, status: str = "ok", **observer_options: Any) -> tuple[RunInfo, RunSummary]:
    run = RunInfo("f" * 32, "unit", str(tmp_path / "p.yaml"), time.time() - 5, observers=observer_options,
                  output_dir=str(tmp_path / ".rcetl" / "unit"))
    summary = RunSummary(run.run_id, "unit", status, run.started_at, time.time(),
                         {"call-log": StreamStats(records=7, failed=2), "recording": StreamStats(records=3, files=3, bytes=3000)},
                         {}, {"rc": {"Heavy": 9, "Light": 4}}, {"rc": 1}, 2,
                         ["<script>alert('x')</script> sink refused"])
    return run, summary


def test_a_real_run_writes_json_and_html_reports_that_match_its_summary(rcetl_pipeline) -> None:
    run = rcetl_pipeline(sinks={"db": {"plugin": "sqlite", "url": "archive.db"},
                                "files": {"plugin": "filesystem", "path": "files"}},
                         observers={"report": {"path": "reports"}})
    folder = run.folder / "reports"
    data = json.loads((folder / f"{run.summary.run_id}.json").read_text())
    assert (folder / "latest.html").read_text() == (folder / f"{run.summary.run_id}.html").read_text()
    assert data["summary"]["status"] == run.summary.status == "ok"
    for stream, st in run.summary.streams.items():
        assert data["summary"]["streams"][stream]["records"] == st.records
    assert data["totals"]["records"] == sum(s.records for s in run.summary.streams.values()) > 0
    assert data["totals"]["bytes"] == sum(s.bytes for s in run.summary.streams.values()) > 0
    # the timeline counted every archived item through rcetl_item_archived
    assert sum(sum(p["items"].values()) for p in data["timeline"]) == data["totals"]["records"]


def test_reports_go_beside_the_state_by_default(tmp_path: Path) -> None:
    run, summary = _run(tmp_path)
    files = write_report(run, summary, RunCollector(run))
    assert files is not None and files.html == tmp_path / ".rcetl" / "unit" / "reports" / f"{run.run_id}.html"
    assert files.latest_html.exists() and files.json.exists()
    run.observers = {"report": {"enabled": False}}
    assert write_report(run, summary, RunCollector(run)) is None


def test_the_page_escapes_what_it_shows_and_needs_nothing_online(tmp_path: Path) -> None:
    run, summary = _run(tmp_path, status="partial")
    collector = RunCollector(run)
    collector.failed(Record("call-log", "<img src=x onerror=alert(1)>", {}), "bad <b>row</b>")
    page = render_html(build_report(run, summary, collector))
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "<img src=x" not in page and "&lt;b&gt;row" in page
    for external in ("<script", "<link", "src=\"http", "href=\"http", "@import", "url("):
        assert external not in page


def test_budget_waits_are_sampled_into_the_timeline(tmp_path: Path) -> None:
    run, summary = _run(tmp_path)
    observers.rcetl_run_started(run)
    observers.rcetl_budget_exhausted(run, "rc", "Heavy", 1.5)
    observers.rcetl_budget_exhausted(run, "rc", "Heavy", 2.0)
    observers.rcetl_budget_exhausted(None, "rc", "Light", 0.5)  # a wait outside a known run
    run.observers = {"report": {"path": "out"}}
    observers.rcetl_run_finished(run, summary)
    data = json.loads((tmp_path / "out" / "latest.json").read_text())
    assert data["budget_waits"]["by_group"] == {"Heavy": 3.5, "Light": 0.5}
    assert sum(p["budget_wait"].get("Heavy", 0) for p in data["timeline"]) == pytest.approx(3.5)
    page = (tmp_path / "out" / "latest.html").read_text()
    assert 'class="wait" data-group="Heavy"' in page and 'data-total="budget_wait" data-value="4.0"' in page


def test_failure_goes_to_the_webhook_and_by_mail(tmp_path: Path, webhook, smtp_server, monkeypatch) -> None:
    url, received = webhook
    port, messages, logins = smtp_server
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret-pass")
    run, summary = _run(tmp_path, status="partial", report={"path": "r"}, notify={
        "webhook": url,
        "email": {"smtp_host": "127.0.0.1", "smtp_port": port, "from": "rcetl@example.com",
                  "to": "ops@example.com", "username": "rcetl", "password": "s3cret-pass"}})
    observers.rcetl_run_started(run)
    observers.rcetl_run_finished(run, summary)

    (hook,) = received
    assert hook["type"] == "application/json" and hook["path"] == "/hook"
    body = hook["body"]
    assert (body["status"], body["failed_items"], body["records"], body["bytes"]) == ("partial", 2, 10, 3000)
    assert body["report"].endswith(f"{run.run_id}.html") and Path(body["report"]).exists()

    (envelope,) = messages
    assert logins == [("rcetl", "s3cret-pass")]
    assert envelope.mail_from == "rcetl@example.com" and envelope.rcpt_tos == ["ops@example.com"]
    mail = message_from_bytes(envelope.content)
    assert mail["Subject"] == "[rcetl] unit: partial (2 failed items)"
    text = mail.get_payload()[0].get_payload(decode=True).decode()
    assert "call-log: 7 records" in text and "s3cret-pass" not in envelope.content.decode()


def test_a_good_run_is_quiet_unless_asked(tmp_path: Path, webhook) -> None:
    url, received = webhook
    run, summary = _run(tmp_path, status="ok", notify={"webhook": url})
    observers.rcetl_run_finished(run, summary)
    assert received == []
    run.observers = {"notify": {"webhook": url, "on": "always"}}
    observers.rcetl_run_finished(run, summary)
    assert [r["body"]["status"] for r in received] == ["ok"]


def test_an_unreachable_webhook_is_logged_and_the_mail_still_goes(tmp_path: Path, smtp_server, caplog) -> None:
    port, messages, _ = smtp_server
    run, summary = _run(tmp_path, status="failed", notify={
        "webhook": "http://127.0.0.1:9/nothing-listens", "timeout": 2,
        "email": {"smtp_host": "127.0.0.1", "smtp_port": port, "from": "a@example.com", "to": ["b@example.com"]}})
    from rcetl.observers.notify import notify

    assert notify(run, summary) == ["email"]
    assert len(messages) == 1 and "webhook http://127.0.0.1:9/nothing-listens failed" in caplog.text


def test_bad_notify_options_are_named(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from rcetl.observers.notify import options_of

    run, _ = _run(tmp_path, notify={"webhook": "ftp://x", "on": "sometimes"})
    with pytest.raises(ValidationError) as info:
        options_of(run)
    assert "webhook" in str(info.value) and "on" in str(info.value)


def test_a_failing_run_notifies_end_to_end(rcetl_pipeline, webhook) -> None:
    """A pipeline whose file sink cannot write: items fail, the run is partial, the webhook hears it."""
    url, received = webhook
    run = rcetl_pipeline(sinks={"db": {"plugin": "sqlite", "url": "archive.db"},
                                "files": {"plugin": "filesystem", "path": "files", "key": "{kind}.{ext}"}},
                         observers={"notify": {"webhook": url}})
    assert run.summary.status in ("partial", "failed") and run.summary.failed_items > 0
    (hook,) = received
    assert hook["body"]["failed_items"] == run.summary.failed_items and hook["body"]["status"] == run.summary.status
    report = json.loads((Path(run.pipeline.spool_dir).parent / "reports" / "latest.json").read_text())
    assert report["failures"]["total"] > 0
