"""The notify observer: POST a JSON summary to a webhook and/or send an e-mail when a run ends.

Options (``observers: {notify: {...}}`` in the pipeline file)::

    notify:
      on: failure                 # failure (default: any status but ok) | always
      webhook: https://hooks.example/rcetl
      email:
        smtp_host: smtp.example.com
        smtp_port: 587
        from: archive@example.com
        to: [ops@example.com]
        username: archive@example.com
        password: ${SMTP_PASSWORD}
        starttls: true            # default: when the server offers it; ssl: true for port 465

A notifier that cannot reach its server logs the error; it never fails the archive.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ..run import RunInfo, RunSummary
from ..secrets import redact, register_secret

log = logging.getLogger("rcetl.observers.notify")


class EmailOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    smtp_host: str
    smtp_port: int = Field(25, ge=1, le=65535)
    sender: str = Field(alias="from")
    to: list[str]
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool | None = Field(None, description="None: use STARTTLS when the server offers it")
    ssl: bool = Field(False, description="SMTP over TLS from the first byte (port 465)")
    timeout: float = Field(30.0, gt=0)

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class NotifyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    on: Literal["failure", "always"] = "failure"
    webhook: str | None = None
    webhook_headers: dict[str, str] = Field(default_factory=dict)
    email: EmailOptions | None = None
    timeout: float = Field(10.0, gt=0, description="seconds for the webhook request")

    @field_validator("webhook")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if not value:
            return None  # `webhook: ${ALERT_WEBHOOK:-}` left empty: no webhook
        if not value.startswith(("http://", "https://")):
            raise ValueError("webhook must be an http:// or https:// URL")
        return value


def options_of(run: RunInfo) -> NotifyOptions | None:
    raw = run.observers.get("notify")
    if not raw:
        return None
    options = NotifyOptions.model_validate(raw)
    if options.email and options.email.password:
        register_secret(options.email.password.get_secret_value())
    return options


def should_notify(options: NotifyOptions, summary: RunSummary) -> bool:
    return options.on == "always" or summary.status != "ok"


def payload(run: RunInfo, summary: RunSummary, report: str | None = None) -> dict[str, Any]:
    """The JSON a webhook receives (and the facts an e-mail tells)."""
    streams = {k: vars(v) for k, v in summary.streams.items()}
    return {
        "event": "rcetl.run_finished",
        "pipeline": run.pipeline,
        "run_id": run.run_id,
        "status": summary.status,
        "ok": summary.ok,
        "started_at": summary.started_at,
        "finished_at": summary.finished_at,
        "duration": round(summary.duration, 3),
        "records": sum(s.records for s in summary.streams.values()),
        "files": sum(s.files for s in summary.streams.values()),
        "bytes": sum(s.bytes for s in summary.streams.values()),
        "failed_items": summary.failed_items,
        "streams": streams,
        "errors": [redact(e) for e in summary.errors[:20]],
        "report": report,
    }


def post_webhook(options: NotifyOptions, body: dict[str, Any]) -> int:
    import urllib.request  # here, not at the top: every `rcetl validate` imports this module

    data = json.dumps(body, default=str).encode()
    request = urllib.request.Request(options.webhook or "", data=data, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "rcetl",
                                              **options.webhook_headers})
    with urllib.request.urlopen(request, timeout=options.timeout) as response:  # noqa: S310 - URL from the pipeline
        return response.status


def email_text(body: dict[str, Any]) -> tuple[str, str]:
    subject = (f"[rcetl] {body['pipeline']}: {body['status']}"
               + (f" ({body['failed_items']} failed items)" if body["failed_items"] else ""))
    lines = [f"Run {body['run_id']} of pipeline {body['pipeline']} ended: {body['status']} "
             f"in {body['duration']:.1f} s.", "",
             f"records {body['records']}, files {body['files']}, bytes {body['bytes']}, "
             f"failed items {body['failed_items']}", ""]
    for name, st in sorted(body["streams"].items()):
        lines.append(f"  {name}: {st['records']} records, {st['files']} files, {st['failed']} failed, {st['gone']} gone")
    if body["errors"]:
        lines += ["", "Errors:"] + [f"  - {e}" for e in body["errors"]]
    if body.get("report"):
        lines += ["", f"Report: {body['report']}"]
    lines += ["", "Failed items are retried on the next run."]
    return subject, "\n".join(lines) + "\n"


def send_email(options: EmailOptions, body: dict[str, Any]) -> None:
    import smtplib  # here, not at the top: every `rcetl validate` imports this module
    import ssl
    from email.message import EmailMessage

    subject, text = email_text(body)
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = subject, options.sender, ", ".join(options.to)
    msg.set_content(text)
    msg.add_attachment(json.dumps(body, indent=2, default=str).encode(), maintype="application", subtype="json",
                       filename=f"rcetl-{body['run_id'][:8]}.json")
    context = ssl.create_default_context()
    smtp_cls = smtplib.SMTP_SSL if options.ssl else smtplib.SMTP
    kwargs: dict[str, Any] = {"timeout": options.timeout}
    if options.ssl:
        kwargs["context"] = context
    with smtp_cls(options.smtp_host, options.smtp_port, **kwargs) as smtp:
        smtp.ehlo()
        use_tls = options.starttls if options.starttls is not None else smtp.has_extn("starttls")
        if use_tls and not options.ssl:
            smtp.starttls(context=context)
            smtp.ehlo()
        if options.username:
            smtp.login(options.username, options.password.get_secret_value() if options.password else "")
        smtp.send_message(msg)


def notify(run: RunInfo, summary: RunSummary, report: str | None = None) -> list[str]:
    """Send what the options ask for; returns what was sent (``webhook``, ``email``). Each channel's
    failure is logged and does not stop the other."""
    options = options_of(run)
    if options is None or not should_notify(options, summary):
        return []
    body = payload(run, summary, report)
    sent = []
    if options.webhook:
        try:
            post_webhook(options, body)
            sent.append("webhook")
        except Exception as exc:  # noqa: BLE001 - a notifier never fails the archive
            log.error("notify: webhook %s failed: %s", redact(options.webhook), redact(str(exc)))
    if options.email:
        try:
            send_email(options.email, body)
            sent.append("email")
        except Exception as exc:  # noqa: BLE001
            log.error("notify: e-mail through %s:%s failed: %s", options.email.smtp_host,
                      options.email.smtp_port, redact(str(exc)))
    return sent
