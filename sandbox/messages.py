"""Message store: list, get by id (batch), delete/purge and message-sync."""

from __future__ import annotations

import bisect

from werkzeug.wrappers import Response

from .calllog import decode_token, encode_token
from .ctx import Ctx, check_batch
from .errors import ApiError, invalid_parameter, not_found
from .model import Message
from .render import iso, message_bytes, message_json, message_stub
from .web import (
    MULTIPART_JSON,
    bool_param,
    boundary_for,
    bytes_response,
    dumps,
    enum_list,
    int_param,
    json_body,
    multipart_json,
    multipart_mixed,
    paged,
    records_body,
)

DAY_MS = 86_400_000
MESSAGE_TYPES = ("Fax", "SMS", "VoiceMail", "Pager")
AVAILABILITY = ("Alive", "Deleted", "Purged")


def _owned(ctx: Ctx, ext: str) -> tuple[int, list[int], list[Message]]:
    owner = ctx.extension_id(ext)
    return (owner, *ctx.account.message_index(owner))


def _common_filter(ctx: Ctx):
    args = ctx.args
    directions = enum_list(args, "direction", ("Inbound", "Outbound"))
    types = enum_list(args, "messageType", MESSAGE_TYPES)
    conv = args.get("conversationId")
    try:
        conv_id = int(conv) if conv else None
    except ValueError:
        raise invalid_parameter("conversationId", conv) from None
    owner = _owner_filter(ctx)
    return lambda m: ((not directions or m.direction in directions) and (not types or m.type in types)
                      and (conv_id is None or m.conversation_id == conv_id) and (owner is None or owner(m)))


def _owner_filter(ctx: Ctx):
    """``owner``: Personal (default) | Any | Shared | extension ids. The sandbox has no shared
    mailboxes, so every message is personal: Shared selects nothing, and a list of ids selects
    the mailbox's messages when its own extension is listed. ``voicemailOwner`` and
    ``ownerExtensionType`` only narrow shared voicemail and are accepted and ignored."""
    values = ctx.args.getlist("owner")
    if not values or values in (["Personal"], ["Any"]):
        return None
    if values == ["Shared"]:
        return lambda m: False
    ids = set()
    for v in values:
        for part in v.split(","):
            if not part.isdigit():
                raise invalid_parameter("owner", v)
            ids.add(int(part))
    return lambda m: m.extension_id in ids


def _distinct(items: list[Message]) -> list[Message]:
    seen, out = set(), []
    for m in items:  # newest first: keep the latest of each conversation
        key = m.conversation_id if m.conversation_id is not None else ("id", m.id)
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out


def list_messages(ctx: Ctx, ext: str) -> Response:
    args = ctx.args
    _, times, items = _owned(ctx, ext)
    per_page = int_param(args, "perPage", 100, hi=1000)
    page = int_param(args, "page", 1)
    date_to = ctx.date("dateTo", ctx.now_ms())
    date_from = ctx.date("dateFrom", date_to - DAY_MS)
    availability = enum_list(args, "availability", AVAILABILITY) or {"Alive"}
    reads = enum_list(args, "readStatus", ("Read", "Unread"))
    phone = (args.get("phoneNumber") or "").lstrip("+")
    common = _common_filter(ctx)
    lo, hi = bisect.bisect_left(times, date_from), bisect.bisect_right(times, date_to)
    selected = [m for m in reversed(items[lo:hi])
                if m.availability in availability and common(m)
                and (not reads or m.read_status in reads)
                and (not phone or phone in {str(p[0] or "").lstrip("+") for p in [m.from_party, *m.to_parties]})]
    if bool_param(args, "distinctConversations", False):
        selected = _distinct(selected)
    params = ctx.params()
    for name, value in (("dateFrom", iso(date_from)), ("perPage", str(per_page))):
        if name not in args:
            params.append((name, value))
    render = lambda m: message_bytes(m, ctx.urls, ctx.account_id)  # noqa: E731
    return bytes_response(paged(selected, render, page, per_page, ctx.base(), params, totals=True))


def _lookup(ctx: Ctx, owner: int, raw: str) -> Message | None:
    try:
        m = ctx.account.messages_by_id.get(int(raw))
    except ValueError:
        return None
    return m if m is not None and m.extension_id == owner else None


def get_messages(ctx: Ctx, ext: str, ids: str) -> Response:
    owner = ctx.extension_id(ext)
    wanted = [i for i in ids.split(",") if i]
    found = [_lookup(ctx, owner, i) for i in wanted]
    if len(wanted) == 1:
        if found[0] is None:
            raise not_found("messageId", wanted[0])
        return bytes_response(message_bytes(found[0], ctx.urls, ctx.account_id, single=True))
    base = ctx.base().rsplit("/", 1)[0]
    if MULTIPART_JSON in ctx.request.headers.get("Accept", ""):
        return multipart_json([(i, 200, message_json(m, ctx.urls, ctx.account_id, single=True)) if m is not None
                               else (i, 404, not_found("messageId", i).body()) for i, m in zip(wanted, found, strict=True)])
    entries = [(f"{base}/{i}", 200, message_bytes(m, ctx.urls, ctx.account_id, single=True)) if m is not None
               else (f"{base}/{i}", 404, not_found("messageId", i).body()) for i, m in zip(wanted, found, strict=True)]
    return multipart_mixed(entries, boundary_for(ids))


def _retire(ctx: Ctx, messages: list[Message], purge: bool) -> None:
    """Alive -> Deleted, Deleted -> Purged; ``purge=true`` goes straight to Purged."""
    now = ctx.now_ms()
    changed = 0
    with ctx.account.lock:
        for m in messages:
            after = "Purged" if purge or m.availability != "Alive" else "Deleted"
            if after == m.availability:
                continue
            m.availability = after
            m.last_modified_ms = now
            m.seq = ctx.account.next_seq()
            changed += 1
    ctx.services.counters.removed("messages", changed)


def _body_ids(ctx: Ctx, limit: int) -> list[str] | None:
    """The optional JSON array of ids a ``*`` path (or a conversation delete) carries."""
    ids = json_body(ctx.request)
    if ids is None:
        return None
    if not isinstance(ids, list):
        raise ApiError(400, "CMN-101", "Request body must be an array of ids")
    check_batch(ids, limit)
    return [str(i) for i in ids]


def delete_messages(ctx: Ctx, ext: str, ids: str) -> Response:
    """First DELETE moves a message to Deleted, the second (or ``purge=true``) to Purged.

    ``*`` in the path takes the ids from a JSON array body (up to 100); ``*`` without a body
    deletes every message of the mailbox, as the spec warns."""
    owner = ctx.extension_id(ext)
    purge = bool_param(ctx.args, "purge", False)
    if ids == "*":
        body = _body_ids(ctx, 100)
        if body is None:
            with ctx.account.lock:
                _retire(ctx, [m for m in ctx.account.messages if m.extension_id == owner], purge)
            return Response(b"", status=204)
        wanted = body
    else:
        wanted = [i for i in ids.split(",") if i]
        check_batch(wanted, 50)
    found = [_lookup(ctx, owner, i) for i in wanted]
    if len(wanted) == 1 and found[0] is None:
        raise not_found("messageId", wanted[0])
    _retire(ctx, [m for m in found if m is not None], purge)
    if all(m is not None for m in found):
        return Response(b"", status=204)
    base = ctx.base().rsplit("/", 1)[0]
    entries = [(f"{base}/{i}", 204 if m is not None else 404, {} if m is not None else not_found("messageId", i).body())
               for i, m in zip(wanted, found, strict=True)]
    return multipart_mixed(entries, boundary_for("delete" + ",".join(wanted)))


DELETE_TYPES = ("Fax", "SMS", "VoiceMail", "Pager", "Text", "All")


def delete_conversations(ctx: Ctx, ext: str) -> Response:
    """DELETE /message-store?conversationId=...&dateTo=&type=&purge=: the messages of the given
    conversations (up to 50 in the query, or up to 100 as a JSON array body), or of the whole
    mailbox when none is given, created up to ``dateTo`` (default now) and of ``type`` (default All)."""
    owner = ctx.extension_id(ext)
    args = ctx.args
    purge = bool_param(args, "purge", False)
    owner_ok = _owner_filter(ctx)
    mtype = args.get("type", "All")
    if mtype not in DELETE_TYPES:
        raise invalid_parameter("type", mtype)
    date_to = ctx.date("dateTo", ctx.now_ms())
    convs = [c for v in args.getlist("conversationId") for c in v.split(",") if c]
    check_batch(convs, 50)
    convs += _body_ids(ctx, 100) or []
    try:
        wanted = {int(c) for c in convs}
    except ValueError:
        raise invalid_parameter("conversationId", ",".join(convs)) from None
    with ctx.account.lock:
        victims = [m for m in ctx.account.messages
                   if m.extension_id == owner and m.creation_ms <= date_to and (mtype == "All" or m.type == mtype)
                   and (not wanted or m.conversation_id in wanted) and (owner_ok is None or owner_ok(m))]
    _retire(ctx, victims, purge)
    return Response(b"", status=204)


def sync(ctx: Ctx, ext: str) -> Response:
    args = ctx.args
    owner, times, items = _owned(ctx, ext)
    sync_type = args.get("syncType", "FSync")
    if sync_type not in ("FSync", "ISync"):
        raise invalid_parameter("syncType", sync_type)
    common = _common_filter(ctx)
    seq = ctx.account.seq
    older = False
    if sync_type == "FSync":
        date_to = ctx.date("dateTo", ctx.now_ms())
        date_from = ctx.date("dateFrom", date_to - DAY_MS)
        count = int_param(args, "recordCount", 0, lo=0)
        lo, hi = bisect.bisect_left(times, date_from), bisect.bisect_right(times, date_to)
        picked = [m for m in reversed(items[lo:hi]) if m.availability == "Alive" and common(m)]
        if count and len(picked) > count:
            picked, older = picked[:count], True
        records = [message_bytes(m, ctx.urls, ctx.account_id) for m in picked]
    else:
        state = decode_token(args.get("syncToken"), "msg")
        if state.get("ext") != owner:
            raise invalid_parameter("syncToken", args.get("syncToken"), "token of another extension")
        changed = sorted((m for m in items if m.seq > state["seq"] and common(m)), key=lambda m: m.last_modified_ms, reverse=True)
        records = [message_bytes(m, ctx.urls, ctx.account_id) if m.availability == "Alive" else dumps(message_stub(m))
                   for m in changed]
    return bytes_response(records_body(
        {"uri": ctx.full_url()}, records,
        {"syncInfo": {"syncType": sync_type, "syncToken": encode_token(k="msg", ext=owner, seq=seq),
                      "syncTime": iso(ctx.now_ms()), "olderRecordsExist": older}}))
