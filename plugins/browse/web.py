"""The browse web application: a read-only WSGI app (werkzeug, the stack the sandbox already uses,
with Jinja2 templates that escape every value) over an opened archive.

Nothing here writes: no route changes a sink, the state store or RingCentral. Binaries are served
from the location the record sink recorded, through the blob sink that stored them (no path from
a request reaches a file system), with HTTP Range for seeking.
"""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from . import coverage as coverage_view
from .query import ArchiveIndex, BadQuery, Binary, Detail, Page, parse_filters

#: Media types shown in the page; anything else is offered as a download only, so a stored HTML or
#: SVG body (a hostile archive) can never run script in the browse origin.
INLINE_TYPES = re.compile(r"^(audio/[a-z0-9.+-]+|image/(png|jpeg|gif|webp)|application/pdf)$")
MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")
RUN_ID = re.compile(r"^[0-9a-f]{8,64}$")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
       "frame-src 'self'; object-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'")


@dataclass
class Credentials:
    """Who may use a browse server bound beyond loopback: a bearer token or basic-auth user/password."""

    token: str | None = None
    user: str | None = None
    password: str | None = None

    def allows(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if self.token and header.startswith("Bearer "):
            return hmac.compare_digest(header[7:].strip().encode(), self.token.encode())
        if self.token and request.args.get("token"):
            return hmac.compare_digest(request.args["token"].encode(), self.token.encode())
        if self.user and self.password and header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return hmac.compare_digest(user.encode(), self.user.encode()) and \
                hmac.compare_digest(password.encode(), self.password.encode())
        return False


@dataclass(kw_only=True, eq=False)
class BrowseApp:
    """WSGI application over one archive: an index (record sink) and the blob sinks."""

    name: str
    index: ArchiveIndex
    blob_sinks: dict[str, Any]
    state: Any = None
    reports_dir: Path | None = None
    credentials: Credentials | None = None
    message_retention_days: int = coverage_view.MESSAGE_RETENTION_DEFAULT

    def __post_init__(self) -> None:
        self.templates = Environment(loader=PackageLoader("rcetl.plugins.browse", "templates"),
                                     autoescape=select_autoescape(default=True, default_for_string=True))
        self.templates.filters["when"] = _when
        self.templates.globals["search_url"] = search_url
        self.urls = Map([
            Rule("/", endpoint="search"),
            Rule("/call/<account>/<call_id>", endpoint="call"),
            Rule("/message/<account>/<int:message_id>", endpoint="message"),
            Rule("/thread/<account>/<conversation_id>", endpoint="thread"),
            Rule("/binary/<stream>/<account>/<record_id>/<blob_id>", endpoint="binary"),
            Rule("/coverage", endpoint="coverage"),
            Rule("/runs", endpoint="runs"),
            Rule("/runs/<run_id>.<any(html, json):ext>", endpoint="report"),
            Rule("/static/<any('browse.css', 'browse.js'):filename>", endpoint="static"),
        ])

    # --- WSGI ----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            if request.method not in ("GET", "HEAD"):
                response = Response("read-only: only GET and HEAD", status=405, headers={"Allow": "GET, HEAD"})
            elif self.credentials is not None and not self.credentials.allows(request):
                response = Response("authentication required", status=401,
                                    headers={"WWW-Authenticate": 'Basic realm="rcetl browse"'})
            else:
                endpoint, values = self.urls.bind_to_environ(environ).match()
                response = getattr(self, f"on_{endpoint}")(request, **values)
        except BadQuery as exc:
            response = self.page("error.html", status=400, message=str(exc))
        except HTTPException as exc:
            response = exc.get_response(environ)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response(environ, start_response)

    def page(self, template: str, status: int = 200, **context: Any) -> Response:
        html = self.templates.get_template(template).render(archive=self.name, **context)
        return Response(html, status=status, mimetype="text/html")

    # --- pages ---------------------------------------------------------------------------------

    def on_search(self, request: Request) -> Response:
        filters = parse_filters(request.args)
        searched = any(v for k, v in request.args.items() if k not in ("limit", "cursor"))
        calls = self.index.search_calls(filters) if searched and filters.wants_calls else Page([])
        messages = self.index.search_messages(filters) if searched and filters.wants_messages else Page([])
        return self.page("search.html", filters=filters, searched=searched, calls=calls, messages=messages,
                         args=request.args)

    def on_call(self, request: Request, account: str, call_id: str) -> Response:
        detail = self.index.call(account, call_id)
        if detail is None:
            raise NotFound(f"no call {call_id!r} in this archive")
        return self.page("call.html", d=detail, **self._binaries(detail, "call-log"))

    def on_message(self, request: Request, account: str, message_id: int) -> Response:
        detail = self.index.message(account, message_id)
        if detail is None:
            raise NotFound(f"no message {message_id} in this archive")
        return self.page("message.html", d=detail, **self._binaries(detail, "message-store"))

    def on_thread(self, request: Request, account: str, conversation_id: str) -> Response:
        return self.page("thread.html", account=account, conversation_id=conversation_id,
                         hits=self.index.thread(account, conversation_id))

    def _binaries(self, detail: Detail, stream: str) -> dict[str, Any]:
        return {"stream": stream, "inline": {b.blob_id: _inline_type(b) for b in detail.binaries}}

    def on_binary(self, request: Request, stream: str, account: str, record_id: str, blob_id: str) -> Response:
        if stream == "call-log":
            detail = self.index.call(account, record_id)
        elif stream == "message-store" and record_id.isdigit():
            detail = self.index.message(account, int(record_id))
        else:
            raise NotFound("unknown stream")
        binary = next((b for b in detail.binaries if b.blob_id == blob_id), None) if detail else None
        if binary is None:
            raise NotFound("no such binary in this record")
        held = [(name, loc) for name, loc in binary.locations.items() if name in self.blob_sinks]
        if not held:
            raise NotFound("no blob sink of this pipeline holds this binary")
        name, location = held[0]
        fh = self.blob_sinks[name].open_stored(location)
        media = _inline_type(binary)
        download = request.args.get("download") == "1" or media is None
        response = Response(wrap_file(request.environ, fh), mimetype=media or "application/octet-stream",
                            direct_passthrough=True)
        response.headers["Content-Disposition"] = (
            f"{'attachment' if download else 'inline'}; filename=\"{_download_name(binary)}\"")
        response.headers["X-Rcetl-SHA256"] = binary.sha256 or ""
        if binary.sha256:
            response.set_etag(binary.sha256)
        # Range for seeking in audio; the original bytes, never re-encoded.
        return response.make_conditional(request, accept_ranges=True, complete_length=binary.size)

    def on_coverage(self, request: Request) -> Response:
        try:
            days = max(7, min(int(request.args.get("days") or 120), 400))
        except ValueError:
            raise BadQuery("days: a whole number") from None
        failed = self.state.failed(self.name) if self.state is not None else []
        proofs = self.state.proofs(self.name) if self.state is not None else {}
        cov = coverage_view.build(self.index, failed, days=days, message_days=self.message_retention_days,
                                  proofs=proofs)
        runs = self.state.runs(self.name, limit=1) if self.state is not None else []
        return self.page("coverage.html", cov=cov, last_run=runs[0] if runs else None)

    def on_runs(self, request: Request) -> Response:
        runs = self.state.runs(self.name, limit=200) if self.state is not None else []
        have = {r.run_id for r in runs if self._report_file(r.run_id, "html") is not None}
        return self.page("runs.html", runs=runs, have=have)

    def on_report(self, request: Request, run_id: str, ext: str) -> Response:
        path = self._report_file(run_id, ext)
        if path is None:
            raise NotFound("no report for this run")
        return Response(path.read_bytes(), mimetype="text/html" if ext == "html" else "application/json")

    def _report_file(self, run_id: str, ext: str) -> Path | None:
        if self.reports_dir is None or not RUN_ID.match(run_id):
            return None
        path = self.reports_dir / f"{run_id}.{ext}"
        return path if path.is_file() else None

    def on_static(self, request: Request, filename: str) -> Response:
        path = Path(__file__).parent / "static" / filename
        mimetype = "text/css" if filename.endswith(".css") else "text/javascript"
        return Response(path.read_bytes(), mimetype=mimetype)


def _inline_type(binary: Binary) -> str | None:
    media = (binary.content_type or "").split(";")[0].strip().lower()
    if not MEDIA_TYPE.match(media):
        return None
    if media in ("audio/x-wav", "audio/wave"):
        media = "audio/wav"
    return media if INLINE_TYPES.match(media) else None


def _download_name(binary: Binary) -> str:
    name = binary.file_name or binary.blob_id
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "binary"


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def search_url(args: Any, **changes: Any) -> str:
    """The search page's URL with ``changes`` applied (the next page's cursor)."""
    from urllib.parse import urlencode

    merged = {k: v for k, v in dict(args).items() if v}
    merged.update({k: v for k, v in changes.items() if v is not None})
    return "/?" + urlencode(merged)
