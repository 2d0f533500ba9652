"""The WSGI application: routing, authentication, rate limiting, faults, counting.

One instance serves both entry points; ``media=True`` marks the media one (the only one that
accepts ``?access_token=``, as media.ringcentral.com is).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .auth import Credentials, Session, TokenStore
from .clock import ScaledClock
from .counters import Counters
from .ctx import Ctx
from .errors import ApiError, not_found, rate_exceeded
from .fault_responses import cut_short, long_retry_after, replace_body
from .faults import BODY_KINDS, FaultPlan
from .model import AccountData
from .ratelimit import RateLimiter
from .render import Urls
from .routes import ROUTES, Route
from .services import Control
from .web import error_response, json_response


class SandboxApp:
    def __init__(self, control: Control, accounts: list[AccountData], credentials: Credentials, clock: ScaledClock,
                 limiter: RateLimiter, faults: FaultPlan, urls: Urls) -> None:
        self.control, self.accounts, self.credentials = control, accounts, credentials
        self.clock, self.limiter, self.faults, self.urls = clock, limiter, faults, urls
        self.tokens = TokenStore(clock)
        self.counters = Counters()
        self.routes = {f"{r.method} {r.rule}": r for r in ROUTES}
        self.url_map = Map([Rule(r.rule, endpoint=f"{r.method} {r.rule}", methods=[r.method]) for r in ROUTES],
                           strict_slashes=False)

    def platform(self, environ, start_response):
        return self.handle(environ, start_response, media=False)

    def media(self, environ, start_response):
        return self.handle(environ, start_response, media=True)

    def handle(self, environ: dict, start_response, media: bool) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, values = self.url_map.bind_to_environ(environ).match()
        except (NotFound, MethodNotAllowed) as e:
            entry = None
            resp = self._unrouted(e)
        else:
            route = self.routes[endpoint]
            entry = self.counters.request(route.name, route.group, self.clock.now() if route.kind != "admin" else None)
            resp = self._dispatch(Ctx(self, request, route.group, media), route, dict(values), environ)
        self.counters.response(resp.status_code, entry)
        # iter_encoded: the body as werkzeug would send it (bytes; a str chunk is encoded first)
        resp.response = self._count_bytes(resp.iter_encoded())
        return resp(environ, start_response)

    @staticmethod
    def _unrouted(e: HTTPException) -> Response:
        if isinstance(e, MethodNotAllowed):
            return json_response(ApiError(405, "CMN-405", "Method not allowed").body(), 405)
        return json_response(ApiError(404, "CMN-102", "Resource not found").body(), 404)

    def _dispatch(self, ctx: Ctx, route: Route, values: dict[str, Any], environ: dict) -> Response:
        faults = self.faults.next(route.name) if route.kind == "api" and self.faults else []
        kinds = {f.kind: f for f in faults}
        if "revoke" in kinds:
            self.tokens.revoke_all()
        try:
            if route.kind == "api":
                session = self._authorize(ctx, values.pop("acct", "~"))  # dictionary routes name no account
                if "429" in kinds:
                    assert route.group is not None, route.name  # every api route has a throttling group (routes.py)
                    ctx.verdict = self.limiter.punish((session.account, session.owner_id, self.credentials.client_id), route.group)
                    raise rate_exceeded(ctx.verdict.headers())
                if "429long" in kinds:
                    raise long_retry_after(ctx.verdict.headers() if ctx.verdict is not None else {})
                if "5xx" in kinds:
                    status = kinds["5xx"].status
                    raise ApiError(status, "CMN-211" if status == 503 else "CMN-500",
                                   "Service Temporarily Unavailable" if status == 503 else "Internal Server Error")
            if route.name == "token" and self.faults and self.faults.token_fault():
                raise ApiError(503, "CMN-211", "Service Temporarily Unavailable")
            resp = route.handler(ctx, **values)
            body_fault = next((k for k in BODY_KINDS if k in kinds), None)
            if body_fault is not None and resp.status_code in (200, 206):
                resp = replace_body(body_fault, resp, environ.get("werkzeug.socket"))
        except ApiError as e:
            resp = error_response(e)
        if ctx.verdict is not None:
            for k, v in ctx.verdict.headers().items():
                resp.headers.setdefault(k, v)
        resp.headers.setdefault("RCRequestId", f"sbx-{self.counters.requests:08d}")
        if "slow" in kinds:
            time.sleep(kinds["slow"].delay / self.clock.time_scale)  # API seconds on the scaled clock
        if "drop" in kinds:
            resp.response = cut_short(resp.response, int(resp.headers.get("Content-Length") or 0) // 2, environ.get("werkzeug.socket"))
        return resp

    def _authorize(self, ctx: Ctx, acct: str) -> Session:
        """Authenticate the caller and meter the request; sets ``ctx.session`` and ``ctx.data``."""
        header = ctx.request.headers.get("Authorization")
        token = None
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer":
                token = value.strip()
        elif ctx.media and "access_token" in ctx.args:
            token = ctx.args["access_token"]
        if token is None:
            raise ApiError(401, "AGW-401", "Authorization header is not specified")
        ctx.session = self.tokens.authenticate(token)
        data = self.accounts[ctx.session.account]
        if acct not in ("~", data.account_id):
            raise not_found("accountId", acct)
        ctx.data = data
        ctx.meter(ctx.session.account, ctx.session.owner_id)
        return ctx.session

    def _count_bytes(self, body: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in body:
            self.counters.sent(len(chunk))
            yield chunk

