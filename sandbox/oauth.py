"""POST /restapi/oauth/token and /restapi/oauth/revoke."""

from __future__ import annotations

import base64

from werkzeug.wrappers import Response

from .auth import ACCESS_TTL, ACCESS_TTL_MIN, JWT_GRANT, REFRESH_TTL, REFRESH_TTL_MAX, SCOPE, Session
from .ctx import Ctx
from .errors import OAuthError
from .web import json_response


def _client(ctx: Ctx) -> None:
    header = ctx.request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    client_id = secret = None
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_client", "OAU-123", "Client authentication is required") from None
    else:
        client_id, secret = ctx.request.form.get("client_id"), ctx.request.form.get("client_secret")
    if client_id is None:
        raise OAuthError("invalid_client", "OAU-123", "Client authentication is required")
    if not ctx.services.credentials.client_ok(client_id, secret):
        raise OAuthError("invalid_client", "OAU-123", "Invalid client", status=401)


def _ttl(ctx: Ctx, name: str, default: int, lo: int, hi: int) -> int:
    raw = ctx.request.form.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise OAuthError("invalid_request", "OAU-101", f"Parameter [{name}] is invalid") from None
    return max(lo, min(hi, value))


def token(ctx: Ctx) -> Response:
    if not ctx.request.mimetype == "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "OAU-250", "Unsupported Media Type", status=415)
    _client(ctx)
    form = ctx.request.form
    grant = form.get("grant_type")
    access_ttl = _ttl(ctx, "access_token_ttl", ACCESS_TTL, ACCESS_TTL_MIN, ACCESS_TTL)
    refresh_ttl = _ttl(ctx, "refresh_token_ttl", REFRESH_TTL, 1, REFRESH_TTL_MAX)
    store = ctx.services.tokens
    session: Session | None  # a refresh finds none for an unknown or spent token
    if grant == JWT_GRANT:
        account = ctx.services.credentials.account_of_jwt(form.get("assertion") or "")
        if account is None:
            raise OAuthError("invalid_grant", "OAU-213", "Invalid assertion signature")
        owner = ctx.services.accounts[account].owner_extension_id
        ctx.meter(account, owner)
        session = store.issue(account, owner, access_ttl, refresh_ttl)
    elif grant == "refresh_token":
        session = store.refresh(form.get("refresh_token") or "", access_ttl, refresh_ttl)
        if session is None:
            raise OAuthError("invalid_grant", "OAU-211", "Token not found")
        ctx.meter(session.account, session.owner_id)
    elif not grant:
        raise OAuthError("invalid_request", "OAU-101", "Parameter [grant_type] is missing")
    else:
        raise OAuthError("unsupported_grant_type", "OAU-121", f"Unsupported grant type [{grant}]")
    now = ctx.services.clock.now()
    return json_response({
        "access_token": session.access_token,
        "token_type": "bearer",
        "expires_in": max(0, round(session.access_expires - now)),
        "refresh_token": session.refresh_token,
        "refresh_token_expires_in": max(0, round(session.refresh_expires - now)),
        "scope": SCOPE,
        "owner_id": str(session.owner_id),
        "endpoint_id": f"sbx-{session.session_id[:8]}",
        "session_id": session.session_id,
    })


def revoke(ctx: Ctx) -> Response:
    _client(ctx)
    value = ctx.request.form.get("token") or ctx.args.get("token")
    if not value:
        raise OAuthError("invalid_request", "OAU-101", "Parameter [token] is missing")
    session = ctx.services.tokens.session_of(value)
    if session is not None:
        ctx.meter(session.account, session.owner_id)
    ctx.services.tokens.revoke(value)
    return Response(b"", status=200)
