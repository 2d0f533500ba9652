"""Browse over a MongoDB record sink answers what it answers over SQL: the same demo data archived
into both (one run, two record sinks), searched and opened through each index."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

import rcetl
from rcetl.plugins.browse.cli import index_for
from rcetl.plugins.browse.query import parse_filters

from ..servers import unique
from .conftest import run_demo
from .test_browse import three_ways


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory, mongodb_url: str):  # noqa: ANN201
    prefix = unique("br").replace("-", "_")
    pipeline = run_demo(tmp_path_factory.mktemp("browse-mongo"),
                        f"  mongo:\n    plugin: mongodb\n    url: {mongodb_url}\n    collection_prefix: {prefix}_\n")
    with rcetl.open_archive(pipeline) as archive:
        yield index_for(archive.record_sinks, "archive")[1], index_for(archive.record_sinks, "mongo")[1]


def ids(page) -> set[str]:  # noqa: ANN001
    return {h.id for h in page.hits}


def test_phone_search_finds_the_same_calls_and_messages(both) -> None:  # noqa: ANN001
    sql, mongo = both
    busiest: dict[str, int] = {}
    for hit in sql.search_calls(parse_filters({"limit": "200"})).hits:
        busiest[hit.from_number or ""] = busiest.get(hit.from_number or "", 0) + 1
    number = max((n for n in busiest if n.startswith("+1") and len(n) == 12), key=busiest.__getitem__)
    expected_calls = ids(sql.search_calls(parse_filters({"phone": number, "limit": "200"})))
    assert expected_calls
    for written in three_ways(number):
        f = parse_filters({"phone": written, "limit": "200"})
        assert ids(mongo.search_calls(f)) == expected_calls, written
        assert ids(mongo.search_messages(f)) == ids(sql.search_messages(f)), written


def test_paging_walks_every_call_once(both) -> None:  # noqa: ANN001
    sql, mongo = both
    for index in (sql, mongo):
        seen, cursor = [], None
        while True:
            page = index.search_calls(parse_filters({"limit": "37", **({"cursor": cursor} if cursor else {})}))
            seen += [h.id for h in page.hits]
            cursor = page.next_cursor
            if not cursor:
                break
        assert len(seen) == len(set(seen))
        assert set(seen) == ids(sql.search_calls(parse_filters({"limit": "200", "since": "2000-01-01"}))) | set(seen)
    assert len(seen) > 37


def test_details_and_binaries_agree(both) -> None:  # noqa: ANN001
    sql, mongo = both
    calls = sql.search_calls(parse_filters({"has_recording": "1", "limit": "20"})).hits
    assert calls
    for hit in calls:
        a, b = sql.call(hit.account, hit.id), mongo.call(hit.account, hit.id)
        assert b is not None and a.raw == b.raw and len(a.legs) == len(b.legs)
        assert [(x.blob_id, x.sha256, x.locations) for x in a.binaries] == \
            [(x.blob_id, x.sha256, x.locations) for x in b.binaries]
    messages = sql.search_messages(parse_filters({"kind": "fax", "limit": "20"})).hits
    assert messages
    for hit in messages:
        a, b = sql.message(hit.account, int(hit.id)), mongo.message(hit.account, int(hit.id))
        assert b is not None and json.dumps(a.raw, sort_keys=True) == json.dumps(b.raw, sort_keys=True)
        assert {x.sha256 for x in a.binaries} == {x.sha256 for x in b.binaries}
        if a.conversation_id:
            assert {h.id for h in sql.thread(hit.account, a.conversation_id)} == \
                {h.id for h in mongo.thread(hit.account, a.conversation_id)}


def test_days_agree(both) -> None:  # noqa: ANN001
    sql, mongo = both
    now = datetime.now(timezone.utc)
    span = (now - timedelta(days=400), now + timedelta(days=1))
    as_set = lambda days: {(d.day, d.stream, d.records) for d in days}  # noqa: E731
    assert as_set(mongo.days(*span)) == as_set(sql.days(*span)) != set()


