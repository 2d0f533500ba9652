"""Call log: list, get by id (batch of up to 50), call-log-sync and call-log-extract-sync."""

from __future__ import annotations

import base64
import bisect
import json
from collections.abc import Callable
from itertools import islice
from typing import Any

from werkzeug.wrappers import Response

from .ctx import Ctx, check_batch
from .errors import ApiError, invalid_parameter, not_found
from .model import Call
from .render import call_bytes, iso
from .web import (
    bool_param,
    boundary_for,
    bytes_response,
    enum_list,
    int_param,
    multipart_mixed,
    page_meta,
    records_body,
)

DAY_MS = 86_400_000
ISYNC_LIMIT = 250
DIRECTIONS, TYPES, TRANSPORTS = ("Inbound", "Outbound"), ("Voice", "Fax"), ("PSTN", "VoIP")
VIEWS = ("Simple", "Detailed")


def _view(ctx: Ctx) -> bool:
    view = ctx.args.get("view", "Simple")
    if view not in VIEWS:
        raise invalid_parameter("view", view)
    return view == "Detailed"


def _recording_type(ctx: Ctx) -> str | None:
    """None (calls with and without recordings), or All | Automatic | OnDemand."""
    rtype = ctx.args.get("recordingType")
    if rtype is not None and rtype not in ("Automatic", "OnDemand", "All"):
        raise invalid_parameter("recordingType", rtype)
    if rtype is None and bool_param(ctx.args, "withRecording", False):
        return "All"
    return rtype


def _scope(ctx: Ctx, ext: str | None) -> int | None:
    return None if ext is None else ctx.extension_id(ext)


def _extra_filter(ctx: Ctx, ext_level: bool) -> Callable[[Call], bool] | None:
    """The filters an index does not cover; None when there are none (the fast path)."""
    args = ctx.args
    directions = enum_list(args, "direction", DIRECTIONS)
    types = enum_list(args, "type", TYPES)
    transports = enum_list(args, "transport", TRANSPORTS) if ext_level else None
    bool_param(args, "showBlocked", True)  # accepted: the sandbox has no calls to or from blocked numbers
    # metadataCategory is accepted and changes nothing: no sandbox record carries metadataCategories.
    session_id, tsid = args.get("sessionId"), args.get("telephonySessionId")
    phone, ext_number = (args.get("phoneNumber") or "").lstrip("+"), args.get("extensionNumber")
    if not (directions or types or transports or session_id or tsid or phone or ext_number):
        return None

    def keep(c: Call) -> bool:
        if (directions and c.direction not in directions) or (types and c.type not in types):
            return False
        if (transports and c.transport not in transports) or (session_id and c.session_id != session_id):
            return False
        if tsid and c.telephony_session_id != tsid:
            return False
        if phone and phone not in {str(p[0] or "").lstrip("+") for p in (c.from_party, c.to_party)}:
            return False
        return not ext_number or ext_number in {p[1] for p in (c.from_party, c.to_party)}

    return keep


def list_calls(ctx: Ctx, ext: str | None = None) -> Response:
    data, args = ctx.account, ctx.args
    owner = _scope(ctx, ext)
    detailed = _view(ctx)
    per_page = int_param(args, "perPage", 100, hi=1000, allow_max=True)
    page = int_param(args, "page", 1)
    date_to = ctx.date("dateTo", ctx.now_ms())
    date_from = ctx.date("dateFrom", date_to - DAY_MS)  # the 24-hour default that bites archivers
    show_deleted = bool_param(args, "showDeleted", False)
    keep = _extra_filter(ctx, ext is not None)
    starts, calls = data.call_index(owner, show_deleted, _recording_type(ctx))
    lo, hi = bisect.bisect_left(starts, date_from), bisect.bisect_right(starts, date_to)
    start = (page - 1) * per_page
    if keep is None:  # the window is the answer: slice it from the newest end
        top = hi - start
        chunk = calls[max(lo, top - per_page):max(lo, top)][::-1]
        has_next = top - per_page > lo
    else:
        matching = (c for c in reversed(calls[lo:hi]) if keep(c))  # newest first
        taken = list(islice(matching, start, start + per_page + 1))
        chunk, has_next = taken[:per_page], len(taken) > per_page
    params = ctx.params()
    for name, value in (("view", "Simple" if not detailed else "Detailed"), ("dateFrom", iso(date_from)), ("perPage", str(per_page))):
        if name not in args:
            params.append((name, value))
    meta = page_meta(page, per_page, start, len(chunk), has_next, None, ctx.base(), params)
    records = [call_bytes(c, ctx.urls, ctx.account_id, detailed) for c in chunk]
    return bytes_response(records_body({"uri": meta["uri"]}, records,
                                       {"paging": meta["paging"], "navigation": meta["navigation"]}))


def get_calls(ctx: Ctx, ids: str, ext: str | None = None) -> Response:
    owner = _scope(ctx, ext)
    detailed = _view(ctx)
    wanted = [i for i in ids.split(",") if i]
    check_batch(wanted, 50)
    found = []
    for cid in wanted:
        c = ctx.account.calls_by_id.get(cid)
        found.append(c if c is not None and (owner is None or c.extension_id == owner) else None)
    if len(wanted) == 1:
        if found[0] is None:
            raise not_found("callRecordId", wanted[0])
        return bytes_response(call_bytes(found[0], ctx.urls, ctx.account_id, detailed))
    entries: list[tuple[str, int, dict[str, Any] | bytes]] = []  # an error body, or a record already serialised
    for cid, c in zip(wanted, found, strict=True):
        href = f"{ctx.base().rsplit('/', 1)[0]}/{cid}"
        if c is None:
            entries.append((href, 404, not_found("callRecordId", cid).body()))
        else:
            entries.append((href, 200, call_bytes(c, ctx.urls, ctx.account_id, detailed)))
    return multipart_mixed(entries, boundary_for(ids))


# --- sync tokens: opaque to clients, a position in the account's modification sequence --------

def encode_token(**state: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(raw: str | None, kind: str) -> dict[str, Any]:
    if not raw:
        raise ApiError(400, "CMN-101", "Parameter [syncToken] is required for ISync", parameterName="syncToken")
    try:
        state = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if state.get("k") != kind:
            raise ValueError
        return state
    except (ValueError, TypeError, AttributeError):
        raise invalid_parameter("syncToken", raw) from None


def _status_group(ctx: Ctx):
    groups = enum_list(ctx.args, "statusGroup", ("Missed", "All"))
    if groups and "All" not in groups:
        return lambda c: c.result in ("Missed", "Voicemail")
    return None


def sync(ctx: Ctx, ext: str | None = None) -> Response:
    data, args = ctx.account, ctx.args
    owner = _scope(ctx, ext)
    detailed = _view(ctx)
    sync_type = args.get("syncType", "FSync")
    if sync_type not in ("FSync", "ISync"):
        raise invalid_parameter("syncType", sync_type)
    status = _status_group(ctx)
    rtype = _recording_type(ctx)
    scope = "" if owner is None else str(owner)
    seq = data.seq
    if sync_type == "FSync":
        count = int_param(args, "recordCount", ISYNC_LIMIT, hi=ISYNC_LIMIT)
        date_from = ctx.date("dateFrom", 0)
        starts, calls = data.call_index(owner, False, rtype)
        lo = bisect.bisect_left(starts, date_from)
        records = list(islice((c for c in reversed(calls[lo:]) if not status or status(c)), count))
    else:
        state = decode_token(args.get("syncToken"), "clg")
        if state.get("scope") != scope:
            raise invalid_parameter("syncToken", args.get("syncToken"), "token of another extension")
        show_deleted = bool_param(args, "showDeleted", False)
        with data.lock:
            calls = list(data.calls)

        def keep(c: Call) -> bool:
            return ((owner is None or c.extension_id == owner) and (not status or status(c))
                    and (rtype is None or (c.recording is not None and rtype in ("All", c.recording.type))))

        changed = [c for c in calls if c.seq > state["seq"] and keep(c)]
        if len(changed) > ISYNC_LIMIT:  # counted before hiding deleted ones: they are changes too
            raise ApiError(400, "CLG-104", "Parameter [syncToken] is invalid [max sync record number limit is exceeded]",
                           parameterName="syncToken")
        records = sorted((c for c in changed if show_deleted or not c.deleted), key=lambda c: c.start_ms, reverse=True)
    token = encode_token(k="clg", scope=scope, seq=seq)
    return bytes_response(records_body(
        {"uri": ctx.full_url()}, [call_bytes(c, ctx.urls, ctx.account_id, detailed) for c in records],
        {"syncInfo": {"syncType": sync_type, "syncToken": token, "syncTime": iso(ctx.now_ms())}}))


def _by_modification(data) -> tuple[list[tuple[int, str]], list[Call]]:
    def build():
        calls = sorted(data.calls, key=lambda c: (c.last_modified_ms, c.id))
        return [(c.last_modified_ms, c.id) for c in calls], calls

    return data.cached("modified", build)


def extract_sync(ctx: Ctx) -> Response:
    """Every record modified after a time, oldest modification first, resumable by token."""
    data, args = ctx.account, ctx.args
    detailed = _view(ctx)
    sync_type = args.get("syncType", "FSync")
    if sync_type not in ("FSync", "ISync"):
        raise invalid_parameter("syncType", sync_type)
    if sync_type == "FSync":
        count = int_param(args, "recordCount", 250, hi=1000)
        after = (ctx.date("dateFrom", ctx.now_ms() - 3_600_000) - 1, "")
    else:
        state = decode_token(args.get("syncToken"), "xclg")
        count, after = state["n"], (state["lm"], state["id"])
    keys, calls = _by_modification(data)
    lo = bisect.bisect_right(keys, after)
    end = min(len(calls), lo + count)
    # Records modified in the same millisecond as the last one come too, as the spec warns.
    while lo < end < len(calls) and keys[end][0] == keys[end - 1][0]:
        end += 1
    page = calls[lo:end]
    last = keys[end - 1] if page else after
    token = encode_token(k="xclg", lm=last[0], id=last[1], n=count)
    return bytes_response(records_body(
        {"uri": ctx.full_url()}, [call_bytes(c, ctx.urls, ctx.account_id, detailed) for c in page],
        {"syncInfo": {"syncType": sync_type, "syncToken": token, "syncTime": iso(ctx.now_ms()),
                      "newerRecordsExist": end < len(calls)}}))


def delete_calls(ctx: Ctx, ext: str) -> Response:
    """DELETE /extension/{extensionId}/call-log?dateTo=: every record of the extension that started
    before ``dateTo`` (default now) is deleted. Deleted records leave the list (``showDeleted=true``
    and ISync still show them, with ``deleted: true``); their recordings are not touched (that is
    DELETE /call-recordings)."""
    owner = ctx.extension_id(ext)
    now = ctx.now_ms()
    date_to = ctx.date("dateTo", now)
    data = ctx.account
    gone = 0
    with data.lock:
        hi = bisect.bisect_left(data.call_starts, date_to)
        for c in data.calls[:hi]:
            if c.extension_id == owner and not c.deleted:
                c.deleted = True
                c.last_modified_ms = max(now, c.last_modified_ms)
                c.seq = data.next_seq()
                gone += 1
        data.changed()
    ctx.services.counters.removed("calls", gone)
    return Response(b"", status=204)
