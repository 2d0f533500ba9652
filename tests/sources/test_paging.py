"""The paginator reads each page once and stops without totals (call-log style)."""

from __future__ import annotations

from typing import Any

import pytest

import rcetl
from rcetl.plugins.sources.ringcentral.paging import iter_pages, iter_records

BASE = "https://platform.ringcentral.com/restapi/v1.0/account/~/call-log"


def make_server(total: int, per_page: int, *, lying_next: bool = False, totals: bool = False, loop: bool = False):
    calls: list[str] = []

    def fetch(url: str, params: Any) -> dict:
        page = int((params or {}).get("page", 0)) or int(url.rsplit("page=", 1)[1]) if "page=" in url else 1
        calls.append(f"{url}|{sorted((params or {}).items())}")
        start = (page - 1) * per_page
        records = [{"id": i} for i in range(start, min(start + per_page, total))]
        nav: dict[str, Any] = {"firstPage": {"uri": f"{BASE}?perPage={per_page}&page=1"}}
        if start + per_page < total or lying_next:
            nav["nextPage"] = {"uri": f"{BASE}?perPage={per_page}&page={1 if loop else page + 1}"}
        paging: dict[str, Any] = {"page": page, "perPage": per_page}
        if totals:
            paging["totalElements"] = total
        return {"records": records, "paging": paging, "navigation": nav}

    return fetch, calls


def test_reads_every_record_once_and_no_page_twice() -> None:
    fetch, calls = make_server(2500, 1000)
    ids = [r["id"] for r in iter_records(fetch, BASE, {"perPage": 1000})]
    assert ids == list(range(2500))
    assert len(calls) == 3 and len(set(calls)) == 3


def test_stops_on_short_page_even_if_next_page_announced() -> None:
    fetch, calls = make_server(1500, 1000, lying_next=True)
    assert sum(len(p["records"]) for p in iter_pages(fetch, BASE, {"perPage": 1000})) == 1500
    assert len(calls) == 2


def test_exact_multiple_stops_on_empty_page_or_missing_next() -> None:
    fetch, calls = make_server(2000, 1000)  # honest server: no nextPage after page 2
    assert sum(len(p["records"]) for p in iter_pages(fetch, BASE, {"perPage": 1000})) == 2000
    assert len(calls) == 2
    fetch, calls = make_server(2000, 1000, lying_next=True)  # announces page 3, which is empty
    assert sum(len(p["records"]) for p in iter_pages(fetch, BASE, {"perPage": 1000})) == 2000
    assert len(calls) == 3


def test_first_page_is_not_read_again_when_next_points_back() -> None:
    fetch, calls = make_server(5000, 1000, loop=True)  # a nextPage that points at page 1
    pages = []
    # Pages 2-5 are out of reach: stopping quietly would lose 4,000 records, so the loop is an error.
    with pytest.raises(rcetl.TransientError, match="paging loop"):
        for page in iter_pages(fetch, BASE, {"perPage": 1000}):
            pages.append(page)
    assert len(pages) == 1 and len(calls) == 1


def test_empty_list_is_one_request() -> None:
    fetch, calls = make_server(0, 1000, lying_next=True)
    assert list(iter_records(fetch, BASE, {"perPage": 1000})) == []
    assert len(calls) == 1
