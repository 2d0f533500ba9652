"""Which API group (rate bucket) each endpoint rcetl calls belongs to.

Taken from the ``x-throttling-group`` of each operation in RingCentral's OpenAPI spec; the test
``tests/sources/test_throttling.py`` checks this table against the spec file, so a change upstream
shows up as a failing test rather than as 429s. The server may still name groups differently (it
reports the real group in ``X-Rate-Limit-Group``): names are compared case-insensitively.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from rcetl import GroupLimit

# Order of waiting requests within a group's budget (lower first).
PRIORITY_AUTH = -10  # a token is needed before anything else can move
PRIORITY_LIST = 0  # list pages feed everything downstream
PRIORITY_DOWNLOAD = 10  # recordings and attachments wait behind list pages of the same group

log = logging.getLogger(__name__)

HEAVY, MEDIUM, LIGHT, AUTH = "Heavy", "Medium", "Light", "Auth"

#: Standard-plan limits per 60 s window [docs: basics/rate-limits]; the headers teach the real ones.
DEFAULT_LIMITS: dict[str, int] = {HEAVY: 10, MEDIUM: 40, LIGHT: 50, AUTH: 5}
DEFAULT_WINDOW = 60.0

#: (method, path template as written in the spec, group). Order matters only for readability:
#: templates are matched whole, so no two can match the same path.
ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("POST", "/restapi/oauth/token", AUTH),
    ("POST", "/restapi/oauth/revoke", AUTH),
    ("GET", "/restapi/v1.0/account/{accountId}", LIGHT),
    ("GET", "/restapi/v1.0/account/{accountId}/extension", MEDIUM),
    ("GET", "/restapi/v1.0/account/{accountId}/call-log", HEAVY),
    ("GET", "/restapi/v1.0/account/{accountId}/extension/{extensionId}/call-log", HEAVY),
    # ISync with showDeleted: how the call-log stream learns of records deleted after they were archived
    ("GET", "/restapi/v1.0/account/{accountId}/call-log-sync", HEAVY),
    ("GET", "/restapi/v1.0/account/{accountId}/extension/{extensionId}/call-log-sync", HEAVY),
    ("GET", "/restapi/v1.0/account/{accountId}/recording/{recordingId}/content", HEAVY),
    ("GET", "/restapi/v1.0/account/{accountId}/extension/{extensionId}/message-store", LIGHT),
    ("GET", "/restapi/v1.0/account/{accountId}/extension/{extensionId}/message-store/{messageId}", LIGHT),
    (
        "GET",
        "/restapi/v1.0/account/{accountId}/extension/{extensionId}/message-store/{messageId}/content/{attachmentId}",
        MEDIUM,
    ),
    ("GET", "/restapi/v1.0/account/{accountId}/extension/{extensionId}/message-sync", LIGHT),
    # used only by `rcetl purge`, after verification
    ("DELETE", "/restapi/v1.0/account/{accountId}/call-recordings", HEAVY),
    ("DELETE", "/restapi/v1.0/account/{accountId}/extension/{extensionId}/message-store/{messageId}", MEDIUM),
)


def _compile(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("^" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "/?$")


_COMPILED = tuple((method, _compile(template), group) for method, template, group in ENDPOINTS)


def canonical_group(name: str) -> str:
    """``heavy`` -> ``Heavy``: one spelling for the budget, whatever case the server uses."""
    for known in DEFAULT_LIMITS:
        if known.casefold() == name.casefold():
            return known
    return name


def group_for(method: str, url: str) -> str:
    """The group of a request to ``url``; unknown endpoints count as Heavy, the scarcest bucket,
    so an unlisted call can never push a group over its limit."""
    path = urlsplit(url).path
    for m, pattern, group in _COMPILED:
        if m == method.upper() and pattern.match(path):
            return group
    log.warning("no throttling group known for %s %s; counting it as %s", method, path, HEAVY)
    return HEAVY


def configured_limits(overrides: dict[str, int] | None = None) -> dict[str, int]:
    """Requests per 60 API seconds per group: the defaults with the pipeline's overrides."""
    limits = dict(DEFAULT_LIMITS)
    for name, value in (overrides or {}).items():
        limits[canonical_group(name)] = int(value)
    return limits


def default_limits(time_scale: float, overrides: dict[str, int] | None = None) -> dict[str, GroupLimit]:
    """The budget defaults in real seconds (the sandbox's 60 s window is 1 s at time_scale 60)."""
    return {
        group: GroupLimit(limit=n, window=DEFAULT_WINDOW / time_scale)
        for group, n in configured_limits(overrides).items()
    }
