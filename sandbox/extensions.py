"""GET /account/{accountId}/extension: the mailboxes an archiver walks."""

from __future__ import annotations

from werkzeug.wrappers import Response

from .ctx import Ctx
from .render import extension_json
from .web import bytes_response, dumps, enum_list, int_param, paged

STATUSES = ("Enabled", "Disabled", "Frozen", "NotActivated", "Unassigned")
TYPES = ("User", "Department", "Announcement", "Voicemail", "DigitalUser", "VirtualUser", "FaxUser", "PagingOnly",
         "SharedLinesGroup", "DelegatedLinesGroup", "GroupCallPickup", "IvrMenu", "ApplicationExtension", "ProxyAdmin",
         "RoomConnector", "ParkLocation", "Limited", "Bot", "Site", "Room", "FlexibleUser", "TieLine", "Unknown")


def list_extensions(ctx: Ctx) -> Response:
    args = ctx.args
    per_page = int_param(args, "perPage", 100, hi=1000)
    page = int_param(args, "page", 1)
    statuses = enum_list(args, "status", STATUSES)
    types = enum_list(args, "type", TYPES)
    number = args.get("extensionNumber")
    emails = set(args.getlist("email"))
    items = [e for e in ctx.account.extensions
             if (not statuses or e.status in statuses) and (not types or e.type in types)
             and (number is None or e.number == number) and (not emails or e.email in emails)]
    params = ctx.params()
    if "perPage" not in args:
        params.append(("perPage", str(per_page)))
    body = paged(items, lambda e: dumps(extension_json(e, ctx.urls, ctx.account_id)), page, per_page, ctx.base(), params, totals=True)
    return bytes_response(body)
