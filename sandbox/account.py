"""GET /restapi/v1.0/account/{accountId}: the account an archiver resolves ``~`` against.

The schema is ``GetAccountInfoResponse`` (``id`` is an int64 there, as in RingCentral's own
examples); only the fields a client plausibly reads are sent, with fixed brand and plan values.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from .ctx import Ctx
from .render import Urls
from .web import json_response


def account_json(data, urls: Urls) -> dict[str, Any]:
    base = urls.account(data.account_id)
    operator = data.extension(data.owner_extension_id)
    number = operator.number if operator is not None and operator.number else "101"
    out: dict[str, Any] = {
        "uri": base,
        # int64 per the spec; a --data file may name an account id that is not a number
        "id": int(data.account_id) if data.account_id.isdigit() else data.account_id,
        "serviceInfo": {
            "uri": f"{base}/service-info",
            "brand": {"id": "1210", "name": "RingCentral",
                      "homeCountry": {"id": "1", "uri": f"{urls.server}/restapi/v1.0/dictionary/country/1",
                                      "name": "United States", "isoCode": "US", "callingCode": "1"}},
            "servicePlan": {"id": "1", "name": "RingEX Standard", "edition": "Standard"},
            "billingPlan": {"id": "1", "name": "Monthly", "durationUnit": "Month", "duration": 1, "type": "Regular"},
        },
        "operator": {"uri": f"{base}/extension/{data.owner_extension_id}", "id": data.owner_extension_id,
                     "extensionNumber": number},
        "mainNumber": f"+1650555{int(data.account_id) % 10000:04d}" if data.account_id.isdigit() else "+16505550100",
        "status": "Confirmed",
        "setupWizardState": "Completed",
        "federated": False,
    }
    return out


def info(ctx: Ctx) -> Response:
    return json_response(account_json(ctx.account, ctx.urls))
