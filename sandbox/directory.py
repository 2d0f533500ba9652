"""Read-only directory and settings endpoints that generic RingCentral clients read during their
connection checks (company directory, business hours, call queues, monitoring groups, recording
settings, answering rules, caller blocking, forwarding numbers, active calls, dictionaries).

Each answers the spec's response schema, pages where the spec pages, and derives its data from the
account's extensions (a call queue is a ``Department`` extension, the directory lists the users and
departments, a user's forwarding number is its own direct number). Settings the sandbox does not
simulate have RingCentral's defaults for a new account (docs/sandbox.md, "Choices").
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from .ctx import Ctx
from .model import Extension
from .render import API, contact_fields
from .web import bytes_response, dumps, enum_list, int_param, json_response, page_meta, paged

# The directory's ContactResource.type enum; other extension types (IvrMenu, ...) are not listed.
DIRECTORY_TYPES = ("User", "Department", "Announcement", "Voicemail", "SharedLinesGroup", "PagingOnly")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
# RingCentral's default business hours for a new account: weekdays 09:00-18:00.
BUSINESS_HOURS = {"weeklyRanges": {day: [{"from": "09:00", "to": "18:00"}] for day in WEEKDAYS}}
# RingCentral's preset fax cover pages (the names its web app offers); id 0 is "None".
FAX_COVER_PAGES = ["None", "Ancient", "Birthday", "Blank", "Clasmod", "Classic", "Confidential", "Contempo",
                   "Elegant", "Express", "Formal", "Jazzy", "Modern", "Urgent"]
GREETINGS = [  # (id, name, usageType, type, category)
    ("1", "Default", "UserExtensionAnsweringRule", "Voicemail", "Message"),
    ("2", "Default", "UserExtensionAnsweringRule", "Introductory", "None"),
    ("3", "Acoustic", "UserExtensionAnsweringRule", "ConnectingAudio", "Music"),
    ("4", "Default", "CompanyAnsweringRule", "Company", "Message"),
    ("5", "Default", "CallRecording", "StartRecording", "Message"),
    ("6", "Default", "CallRecording", "StopRecording", "Message"),
    ("7", "Default", "CallRecording", "AutomaticRecording", "Message"),
    ("8", "Default", "BlockedCalls", "BlockedCallersAll", "Message"),
]


def _page(ctx: Ctx, items: list, render, max_per_page: int = 1000, default: int = 100) -> Response:  # noqa: ANN001
    """One page of ``items`` with uri, paging (with totals) and navigation, as the spec's lists have."""
    per_page = int_param(ctx.args, "perPage", default, hi=max_per_page)
    page = int_param(ctx.args, "page", 1)
    return bytes_response(paged(items, lambda x: dumps(render(x)), page, per_page, ctx.base(), ctx.params(), totals=True))


def _ext(ctx: Ctx, ext: str) -> Extension:
    ext_id = ctx.extension_id(ext)
    found = ctx.account.extension(ext_id)
    assert found is not None
    return found


def _direct_number(ext: Extension) -> str | None:
    # The same number the generated call log gives the user (render: +1650555 + extension number).
    return f"+1650555{ext.number.zfill(4)[-4:]}" if ext.number else None


def directory_entries(ctx: Ctx) -> Response:
    types = enum_list(ctx.args, "type", DIRECTORY_TYPES)
    items = [e for e in ctx.account.extensions if e.type in DIRECTORY_TYPES and (not types or e.type in types)]
    per_page = int_param(ctx.args, "perPage", 1000, hi=2000)
    page = int_param(ctx.args, "page", 1)
    start = (page - 1) * per_page
    chunk = items[start:start + per_page]
    meta = page_meta(page, per_page, start, len(chunk), len(items) > start + per_page, len(items), ctx.base(), ctx.params())
    # DirectoryResource has records and paging only (no uri or navigation).
    return json_response({"paging": meta["paging"], "records": [_contact(ctx, e) for e in chunk]})


def _contact(ctx: Ctx, ext: Extension) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(ext.id), "type": ext.type, "status": ext.status, "account": {"id": ctx.account_id}}
    if ext.number:
        out["extensionNumber"] = ext.number
    out["name"] = ext.name
    out.update(contact_fields(ext))
    number = _direct_number(ext)
    if number and ext.type == "User":
        out["phoneNumbers"] = [{"phoneNumber": number, "type": "VoiceFax", "usageType": "DirectNumber"}]
    out["hidden"] = False
    return out


def account_business_hours(ctx: Ctx) -> Response:
    return json_response({"uri": ctx.full_url(), "schedule": BUSINESS_HOURS})


def extension_business_hours(ctx: Ctx, ext: str) -> Response:
    _ext(ctx, ext)
    return json_response({"uri": ctx.full_url(), "schedule": BUSINESS_HOURS})


def _queue_members(ctx: Ctx) -> dict[int, set[int]]:
    """Each call queue (a Department) has the users whose position matches it, round robin."""
    queues = [e for e in ctx.account.extensions if e.type == "Department"]
    users = [e for e in ctx.account.extensions if e.type == "User" and e.number]
    return {q.id: {u.id for i, u in enumerate(users) if queues and i % len(queues) == n} for n, q in enumerate(queues)}


def call_queues(ctx: Ctx) -> Response:
    members = _queue_members(ctx)
    member = ctx.args.get("memberExtensionId")
    queues = [e for e in ctx.account.extensions if e.type == "Department"
              and (member is None or (member.isdigit() and int(member) in members.get(e.id, set())))]

    def render(q: Extension) -> dict[str, Any]:
        out: dict[str, Any] = {"uri": f"{ctx.urls.account(ctx.account_id)}/call-queues/{q.id}", "id": str(q.id)}
        if q.number:
            out["extensionNumber"] = q.number
        out["name"] = q.name
        out["status"] = q.status if q.status in ("Enabled", "Disabled", "NotActivated", "Unassigned") else "Enabled"
        return out

    return _page(ctx, queues, render)


def call_monitoring_groups(ctx: Ctx) -> Response:
    # A new account has no call monitoring groups; the list is empty but complete and paged.
    return _page(ctx, [], lambda g: g)


def call_recording_settings(ctx: Ctx) -> Response:
    recorded = len([e for e in ctx.account.extensions if e.type == "User"])
    return json_response({
        "onDemand": {"enabled": True},
        "automatic": {"enabled": True, "outboundCallTones": False, "outboundCallAnnouncement": False,
                      "allowMute": False, "extensionCount": recorded},
        "greetings": [{"type": "StartRecording", "mode": "Default"}, {"type": "StopRecording", "mode": "Default"},
                      {"type": "AutomaticRecording", "mode": "Default"}],
    })


def company_answering_rules(ctx: Ctx) -> Response:
    base = f"{ctx.urls.account(ctx.account_id)}/answering-rule"
    rules = [{"id": "business-hours-rule", "uri": f"{base}/business-hours-rule", "enabled": True,
              "type": "BusinessHours", "name": "Business Hours"},
             {"id": "after-hours-rule", "uri": f"{base}/after-hours-rule", "enabled": True,
              "type": "AfterHours", "name": "After Hours"}]
    wanted = ctx.args.get("type")
    return _page(ctx, [r for r in rules if wanted is None or r["type"] == wanted], lambda r: r)


def caller_blocking(ctx: Ctx, ext: str) -> Response:
    _ext(ctx, ext)
    return json_response({"mode": "Specific", "noCallerId": "Allow", "payPhones": "Allow",
                          "greetings": [{"type": "BlockedCallersSpecific", "preset": {"id": "8", "name": "Default"}}]})


def blocked_numbers(ctx: Ctx, ext: str) -> Response:
    _ext(ctx, ext)
    return _page(ctx, [], lambda n: n)  # nobody is blocked in a sandbox account


def forwarding_numbers(ctx: Ctx, ext: str) -> Response:
    owner = _ext(ctx, ext)
    number = _direct_number(owner)
    records = []
    if number and owner.type == "User":
        records.append({"id": f"{owner.id}01", "uri": f"{ctx.urls.account(ctx.account_id)}/extension/{owner.id}/forwarding-number/{owner.id}01",
                        "phoneNumber": number, "label": "Business Phone", "features": ["CallFlip", "CallForwarding"],
                        "flipNumber": "1", "type": "PhoneLine"})
    return _page(ctx, records, lambda r: r)


def active_calls(ctx: Ctx, ext: str) -> Response:
    _ext(ctx, ext)
    # No call is in progress in a simulated account at rest: an empty page of CallLogResponse.
    per_page = int_param(ctx.args, "perPage", 100, hi=1000, allow_max=True)
    page = int_param(ctx.args, "page", 1)
    meta = page_meta(page, per_page, 0, 0, False, 0, ctx.base(), ctx.params())
    return json_response({"uri": meta["uri"], "records": [], "paging": meta["paging"], "navigation": meta["navigation"]})


def dictionary_greetings(ctx: Ctx) -> Response:
    usage = ctx.args.get("usageType")
    kind = ctx.args.get("type")
    items = [g for g in GREETINGS if (usage is None or g[2] == usage) and (kind is None or g[3] == kind)]

    def render(g: tuple) -> dict[str, Any]:
        gid, name, usage_type, gtype, category = g
        return {"id": gid, "uri": f"{ctx.urls.server}{API}/dictionary/greeting/{gid}", "name": name,
                "usageType": usage_type, "type": gtype, "category": category}

    return _page(ctx, items, render)


def dictionary_fax_cover_pages(ctx: Ctx) -> Response:
    return _page(ctx, list(enumerate(FAX_COVER_PAGES)), lambda p: {"id": str(p[0]), "name": p[1]})
