"""The read-only directory and settings endpoints generic RingCentral clients read during their
connection checks: 200, valid against the spec, in their rate-limit group, paged where the spec
pages, and consistent with the account's extensions."""

from __future__ import annotations

import pytest
from ringcentral import SDK

from rcetl.sandbox.routes import ROUTES

from .rc_spec import check

V1 = "/restapi/v1.0/account/~"
ENDPOINTS = [  # (route name, path)
    ("directory-entries", f"{V1}/directory/entries"),
    ("account-business-hours", f"{V1}/business-hours"),
    ("extension-business-hours", f"{V1}/extension/~/business-hours"),
    ("call-queues", f"{V1}/call-queues"),
    ("call-monitoring-groups", f"{V1}/call-monitoring-groups"),
    ("call-recording-settings", f"{V1}/call-recording"),
    ("company-answering-rules", f"{V1}/answering-rule"),
    ("caller-blocking", f"{V1}/extension/~/caller-blocking"),
    ("caller-blocking-numbers", f"{V1}/extension/~/caller-blocking/phone-numbers"),
    ("forwarding-numbers", f"{V1}/extension/~/forwarding-number"),
    ("extension-active-calls", f"{V1}/extension/~/active-calls"),
    ("dictionary-greetings", "/restapi/v1.0/dictionary/greeting"),
    ("dictionary-fax-cover-pages", "/restapi/v1.0/dictionary/fax-cover-page"),
]
GROUPS = {r.name: r.group for r in ROUTES}


@pytest.mark.parametrize(("route", "path"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_answers_200_valid_in_its_group(openapi, sandbox, api, route, path):
    r = api.get(sandbox.server + path)
    assert r.status_code == 200, r.text
    check(openapi, route, r)
    assert r.headers["X-Rate-Limit-Group"] == GROUPS[route].lower()
    assert r.headers["Content-Type"].startswith("application/json")


def _ids(api, url, key="id", **params):
    return [x[key] for x in api.get(url, params=params).json()["records"]]


def test_consistent_with_the_extensions(sandbox, api):
    exts = sandbox.data[0].extensions
    listed = _ids(api, f"{sandbox.server}{V1}/directory/entries")
    assert listed == [str(e.id) for e in exts if e.type in ("User", "Department")]
    users = _ids(api, f"{sandbox.server}{V1}/directory/entries", type="User")
    assert users == [str(e.id) for e in exts if e.type == "User"]
    queues = _ids(api, f"{sandbox.server}{V1}/call-queues")
    assert queues == [str(e.id) for e in exts if e.type == "Department"] and queues
    member = next(e for e in exts if e.type == "User" and e.number)
    mine = _ids(api, f"{sandbox.server}{V1}/call-queues", memberExtensionId=str(member.id))
    assert set(mine) <= set(queues) and len(mine) == 1, "every numbered user is in exactly one queue"
    owner = sandbox.data[0].owner_extension_id
    fwd = api.get(f"{sandbox.server}{V1}/extension/{owner}/forwarding-number").json()["records"]
    assert [f["phoneNumber"] for f in fwd] == [f"+1650555{sandbox.data[0].extension(owner).number.zfill(4)[-4:]}"]
    assert api.get(f"{sandbox.server}{V1}/extension/1/caller-blocking").status_code == 404
    assert api.get(f"{sandbox.server}{V1}/extension/{owner}/business-hours").status_code == 200


def test_paged_where_the_spec_pages(openapi, sandbox, api):
    url = f"{sandbox.server}{V1}/directory/entries"
    total = api.get(url).json()["paging"]["totalElements"]
    seen = []
    for page in range(1, total + 1):
        r = api.get(url, params={"perPage": 1, "page": page})
        body = check(openapi, "directory-entries", r)
        assert body["paging"]["page"] == page and body["paging"]["totalPages"] == total
        seen += [x["id"] for x in body["records"]]
    assert seen == _ids(api, url) and len(seen) == total
    cover = f"{sandbox.server}/restapi/v1.0/dictionary/fax-cover-page"
    first = api.get(cover, params={"perPage": 5}).json()
    assert len(first["records"]) == 5 and "nextPage" in first["navigation"] and first["paging"]["totalElements"] > 5
    last = api.get(first["navigation"]["lastPage"]["uri"]).json()
    assert "nextPage" not in last["navigation"] and last["records"]


def test_a_generic_client_reads_them(sandbox):
    """RingCentral's own SDK, as a connection check would call it."""
    platform = SDK(sandbox.client_id, sandbox.client_secret, sandbox.server).platform()
    platform.login(jwt=sandbox.jwt)
    for _, path in ENDPOINTS:
        assert platform.get(path).response().status_code == 200
