"""Admin routes outside /restapi (``/sandbox/...``): what a test or benchmark asks of a running
sandbox from another process. No authentication: the sandbox is a local test double."""

from __future__ import annotations

from werkzeug.wrappers import Response

from .ctx import Ctx
from .errors import ApiError
from .web import json_response


def info(ctx: Ctx) -> Response:
    return json_response(ctx.services.control.info())


def counters(ctx: Ctx) -> Response:
    return json_response(ctx.services.counters.snapshot())


def ground_truth(ctx: Ctx) -> Response:
    return json_response(ctx.services.control.ground_truth())


def _count(ctx: Ctx) -> int:
    body = ctx.request.get_json(silent=True) or {}
    n = body.get("n", ctx.args.get("n", 1))
    try:
        return int(n)
    except (TypeError, ValueError):
        raise ApiError(400, "CMN-101", "n must be an integer") from None


def add_calls(ctx: Ctx, index: int) -> Response:
    added = ctx.services.control.add_calls(_count(ctx), account=index)
    return json_response({"added": [c["id"] for c in added]})


def add_messages(ctx: Ctx, index: int) -> Response:
    added = ctx.services.control.add_messages(_count(ctx), account=index)
    return json_response({"added": [m["id"] for m in added]})


def revoke_tokens(ctx: Ctx) -> Response:
    ctx.services.tokens.revoke_all()
    return json_response({"revoked": True})
