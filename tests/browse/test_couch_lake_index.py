"""Browse over a CouchDB and a lake record sink answers what it answers over SQL: the demo data
archived into SQLite, CouchDB (the real CouchDB-protocol server, tests/servers.py) and a Parquet lake
in one run, searched and opened through each index with the same filters.

Plus what only these stores need: CouchDB searches name the sink's Mango indexes (``_explain``),
records of one instant page once each (the keyset's document-id half), and a lake search reads only
the days it needs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

import rcetl
from rcetl.plugins.browse import couch_index
from rcetl.plugins.browse.cli import index_for
from rcetl.plugins.browse.couch_index import CouchArchiveIndex
from rcetl.plugins.browse.lake_index import LakeArchiveIndex
from rcetl.plugins.browse.query import parse_filters
from rcetl.plugins.browse.web import BrowseApp
from rcetl.testing import make_context

from ..servers import unique
from .conftest import run_demo, serve
from .test_browse import three_ways

STORES = ("couch", "lake")
#: CouchDB twice: filtering as the server found calls for, and with every condition in the selector
#: (what a CouchDB server gets; PouchDB Server answers both ways alike, the second slower).
INDEXES = ("couch", "couch-filters-on-server", "lake")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, couchdb_server_info: tuple[str, str]
            ) -> Iterator[rcetl.OpenedArchive]:
    """One run of the demo into SQLite (``archive``), CouchDB (``couch``, binaries as attachments
    too) and a lake (``lake``), with the binaries in the folder sink (``files``)."""
    url, _ = couchdb_server_info
    database = unique("browse")  # this module's own database on the shared server
    pipeline = run_demo(tmp_path_factory.mktemp("browse-couch-lake"),
                        f"  couch:\n    plugin: couchdb\n    url: {url}\n    database: {database}\n"
                        "  lake:\n    plugin: lake\n    path: demo-archive/lake\n")
    try:
        with rcetl.open_archive(pipeline) as opened:
            yield opened
    finally:
        requests.delete(f"{url}/{database}", timeout=30)


def index(archive: rcetl.OpenedArchive, name: str) -> Any:
    return index_for(archive.record_sinks, name)[1]


@pytest.fixture(scope="module")
def sql(archive: rcetl.OpenedArchive) -> Any:
    return index(archive, "archive")


@pytest.fixture(scope="module", params=INDEXES)
def other(request: pytest.FixtureRequest, archive: rcetl.OpenedArchive) -> Any:
    ix = index(archive, request.param.split("-")[0])
    if request.param == "couch-filters-on-server":
        ix.covered = False
    return ix


def ids(page: Any) -> list[str]:
    return [h.id for h in page.hits]


def walk(ix: Any, search: str, args: dict[str, str]) -> list[str]:
    """Every id a search finds, page after page."""
    seen: list[str] = []
    cursor = None
    while True:
        page = getattr(ix, search)(parse_filters({**args, **({"cursor": cursor} if cursor else {})}))
        seen += ids(page)
        cursor = page.next_cursor
        if not cursor:
            return seen


def test_the_indexes_are_the_stores_own(archive: rcetl.OpenedArchive) -> None:
    couch = index(archive, "couch")
    assert isinstance(couch, CouchArchiveIndex)
    # selectors of the index's fields alone for PouchDB Server, every condition for CouchDB
    assert couch.covered == ("couchdb" not in couch.client.json("GET", "", server=True))
    assert isinstance(index(archive, "lake"), LakeArchiveIndex)
    # without --sink: the store searched best (SQL), whatever the pipeline's order; then CouchDB, then the lake
    sinks = archive.record_sinks
    assert index_for({n: sinks[n] for n in ("lake", "couch", "archive")}, None)[0] == "archive"
    assert index_for({n: sinks[n] for n in ("lake", "couch")}, None)[0] == "couch"
    assert index_for({"lake": sinks["lake"]}, None)[0] == "lake"
    with pytest.raises(rcetl.ConfigError, match="couchdb and lake"):
        index_for({"lake": sinks["lake"]}, "files")


def test_phone_search_finds_the_same_calls_and_messages(sql: Any, other: Any) -> None:
    busiest: dict[str, int] = {}
    for hit in sql.search_calls(parse_filters({"limit": "200"})).hits:
        busiest[hit.from_number or ""] = busiest.get(hit.from_number or "", 0) + 1
    number = max((n for n in busiest if n.startswith("+1") and len(n) == 12), key=busiest.__getitem__)
    expected_calls = ids(sql.search_calls(parse_filters({"phone": number, "limit": "200"})))
    assert len(expected_calls) > 1
    for written in three_ways(number):
        f = parse_filters({"phone": written, "limit": "200"})
        assert ids(other.search_calls(f)) == expected_calls, written  # the same calls, in the same order
        assert set(ids(other.search_messages(f))) == set(ids(sql.search_messages(f))), written


def test_paging_walks_every_call_and_message_once(sql: Any, other: Any) -> None:
    for search in ("search_calls", "search_messages"):
        expected = walk(sql, search, {"limit": "200"})
        seen = walk(other, search, {"limit": "37"})
        assert len(seen) == len(set(seen)) > 37
        assert set(seen) == set(expected), search
    assert walk(other, "search_calls", {"limit": "37"}) == walk(sql, "search_calls", {"limit": "37"})


def filter_cases(sql: Any) -> list[dict[str, str]]:
    """Every filter alone and a few together, with values taken from the archive."""
    calls = sql.search_calls(parse_filters({"limit": "200"})).hits
    days = sorted({h.time.date() for h in calls if h.time})
    middle = days[len(days) // 2]
    name = next(h.from_name for h in calls if h.from_name and " " in h.from_name)
    part = name.split(" ")[1][:4].swapcase()  # part of a surname, in the other letter case
    extension = sql.call(calls[0].account, calls[0].id).raw["extension"]["id"]
    sender = next(str(m.raw["from"]["extensionId"]) for h in sql.search_messages(parse_filters({"limit": "200"})).hits
                  if (m := sql.message(h.account, int(h.id))) and (m.raw.get("from") or {}).get("extensionId"))
    number = calls[0].to_number or ""
    return [
        {"direction": "Inbound"}, {"direction": "Outbound"},
        {"kind": "call"}, {"kind": "fax"}, {"kind": "sms"}, {"kind": "voicemail"}, {"kind": "pager"},
        {"result": "Missed"}, {"result": "Voicemail"}, {"has_recording": "1"},
        {"extension": str(extension)}, {"extension": sender},
        {"name": part}, {"name": name}, {"name": "no such name anywhere"},
        {"since": middle.isoformat()}, {"until": middle.isoformat()},
        {"since": (middle - timedelta(days=3)).isoformat(), "until": middle.isoformat()},
        {"phone": number, "direction": "Inbound"}, {"name": part, "since": days[0].isoformat()},
        {"kind": "call", "has_recording": "1", "direction": "Outbound"},
        {"extension": str(extension), "result": "Accepted"},
    ]


def test_every_filter_finds_what_sql_finds(sql: Any, other: Any) -> None:
    for case in filter_cases(sql):
        f = parse_filters({**case, "limit": "200"})
        checked = 0
        if f.wants_calls:
            expected = ids(sql.search_calls(f))
            assert ids(other.search_calls(f)) == expected, case
            checked += len(expected)
        if f.wants_messages:
            expected = ids(sql.search_messages(f))
            assert set(ids(other.search_messages(f))) == set(expected), case
            checked += len(expected)
        assert checked or case.get("name") == "no such name anywhere" or case.get("kind") == "pager", case


def test_paging_with_filters_checked_on_the_json(sql: Any, other: Any) -> None:
    """Pages of a name or message-extension search (filters the stores check on the JSON, reading
    further than a page) hold every match once."""
    for case in filter_cases(sql):
        if "name" in case or "extension" in case or "has_recording" in case:
            for search in ("search_calls", "search_messages"):
                expected = walk(sql, search, {**case, "limit": "200"})
                seen = walk(other, search, {**case, "limit": "3"})
                assert sorted(seen) == sorted(expected), (case, search)


def test_details_binaries_and_threads_agree(sql: Any, other: Any) -> None:
    calls = sql.search_calls(parse_filters({"has_recording": "1", "limit": "20"})).hits
    assert calls
    for hit in calls:
        a, b = sql.call(hit.account, hit.id), other.call(hit.account, hit.id)
        assert b is not None and a.raw == b.raw and len(a.legs) == len(b.legs) and b.hit.id == hit.id
        assert [(x.blob_id, x.sha256, x.locations) for x in a.binaries] == \
            [(x.blob_id, x.sha256, x.locations) for x in b.binaries] != []
    messages = sql.search_messages(parse_filters({"kind": "fax", "limit": "20"})).hits
    assert messages
    threads = 0
    for hit in messages:
        a, b = sql.message(hit.account, int(hit.id)), other.message(hit.account, int(hit.id))
        assert b is not None and json.dumps(a.raw, sort_keys=True) == json.dumps(b.raw, sort_keys=True)
        assert {(x.sha256, x.file_name) for x in a.binaries} == {(x.sha256, x.file_name) for x in b.binaries}
        if a.conversation_id:
            threads += 1
            assert {h.id for h in sql.thread(hit.account, a.conversation_id)} == \
                {h.id for h in other.thread(hit.account, a.conversation_id)}
    for hit in sql.search_messages(parse_filters({"kind": "sms", "limit": "10"})).hits:
        conversation = sql.message(hit.account, int(hit.id)).conversation_id
        if conversation:
            threads += 1
            assert [h.id for h in other.thread(hit.account, conversation)] == \
                [h.id for h in sql.thread(hit.account, conversation)] != []
    assert threads
    assert other.call("nobody", "nothing") is None and other.message("nobody", 1) is None
    assert other.thread(messages[0].account, "123456789") == []


def test_days_and_day_keys_agree(sql: Any, other: Any) -> None:
    now = datetime.now(timezone.utc)
    span = (now - timedelta(days=400), now + timedelta(days=1))
    as_set = lambda days: {(d.day, d.stream, d.records) for d in days}  # noqa: E731
    assert as_set(other.days(*span)) == as_set(sql.days(*span)) != set()
    assert set(other.day_keys(*span)) == set(sql.day_keys(*span))
    recent = (now - timedelta(days=5), now)
    assert as_set(other.days(*recent)) == as_set(sql.days(*recent))


@pytest.mark.parametrize("store", STORES)
def test_the_web_view_searches_and_serves_binaries_through_the_store(archive: rcetl.OpenedArchive,
                                                                     store: str) -> None:
    ix = index(archive, store)
    app = BrowseApp(name=archive.name, index=ix, blob_sinks=archive.blob_sinks, state=archive.state)
    url, server = serve(app)
    try:
        hit = ix.search_calls(parse_filters({"has_recording": "1", "limit": "1"})).hits[0]
        page = requests.get(url + "/", params={"phone": hit.from_number, "kind": "call"}, timeout=30)
        assert page.status_code == 200 and f'data-id="{hit.id}"' in page.text
        detail = ix.call(hit.account, hit.id)
        blob = detail.binaries[0]
        got = requests.get(f"{url}/binary/call-log/{hit.account}/{hit.id}/{blob.blob_id}", timeout=30)
        assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == blob.sha256
        assert set(blob.locations) >= {"files", "couch"}  # stored twice: the folder and CouchDB attachments
        more = requests.get(url + "/", params={"kind": "call", "limit": 5}, timeout=30)
        assert more.status_code == 200 and "more calls" in more.text
    finally:
        server.shutdown()


def test_couch_searches_use_the_sinks_indexes(archive: rcetl.OpenedArchive, sql: Any) -> None:
    """Every ``_find`` a search sends names the index its filters call for, and the server agrees
    that is the index it reads (``_explain``)."""
    ix = index(archive, "couch")
    hit = sql.search_calls(parse_filters({"limit": "1"})).hits[0]
    expected = [
        ({"phone": hit.from_number or ""}, {"from-e164", "to-e164"}),
        ({"extension": str(sql.call(hit.account, hit.id).raw["extension"]["id"])}, {"extension"}),
        ({"kind": "call"}, {"type"}), ({"direction": "Inbound"}, {"direction"}),
        ({"since": "2000-01-01"}, {"stream-time"}), ({"name": "a"}, {"stream-time"}),
    ]
    for args, names in expected:
        ix.sent = []
        ix.search_calls(parse_filters(args))
        assert {body["use_index"][1] for body in ix.sent} == names, args
        for body in ix.sent:
            plan = ix.client.json("POST", "_explain", body=body)
            assert plan["index"]["name"] == body["use_index"][1], (args, plan["index"])


def test_lake_reads_only_the_days_a_search_needs(archive: rcetl.OpenedArchive, sql: Any) -> None:
    ix = index(archive, "lake")
    calls = sql.search_calls(parse_filters({"limit": "200"})).hits
    days = sorted({h.time.date() for h in calls if h.time})
    day = days[len(days) // 2]
    ix.read = []
    page = ix.search_calls(parse_filters({"since": day.isoformat(), "until": day.isoformat(), "limit": "200"}))
    assert page.hits and {h.time.date() for h in page.hits} == {day}
    assert ix.read and all(f"date={day.isoformat()}" in path for path in ix.read)
    # the first page (and whether there is more) reads the newest days, down to the sixth call's
    ix.read = []
    first = ix.search_calls(parse_filters({"limit": "5"}))
    assert ids(first) == [h.id for h in calls[:5]] and first.next_cursor
    oldest_read = min(path.split("date=")[1][:10] for path in ix.read)
    assert oldest_read == calls[5].time.date().isoformat()


# --- small stores written by the sinks themselves --------------------------------------------------

def calls(names: list[str], at: str = "2026-11-30T12:00:00.000Z", prefix: str = "call"
          ) -> list[rcetl.ArchivedRecord]:
    """Calls ``call-000``, ``call-001``, ... of one instant, from the callers ``names``."""
    out = []
    for i, name in enumerate(names):
        data = {"id": f"{prefix}-{i:03d}", "startTime": at, "type": "Voice",
                "direction": "Inbound", "from": {"phoneNumber": "+16505550123", "name": name},
                "to": {"phoneNumber": "+16505550188"}, "result": "Accepted", "duration": i}
        out.append(rcetl.ArchivedRecord(rcetl.Record("call-log", data["id"], data, account="1",
                                                     occurred_at=datetime.fromisoformat(at.replace("Z", "+00:00")))))
    return out


@pytest.fixture(params=INDEXES)
def small(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """(sink, index) of an empty CouchDB database or lake; CouchDB reads four rows per request."""
    if request.param == "lake":
        from rcetl.plugins.sinks.lake import LakeConfig
        from rcetl.plugins.sinks.lake.sink import LakeSink

        lake = LakeSink("lake", LakeConfig(path=str(tmp_path / "lake")), make_context(tmp_path))
        lake.open()
        yield lake, LakeArchiveIndex(lake)
        return
    from rcetl.plugins.sinks.couchdb import CouchDBConfig
    from rcetl.plugins.sinks.couchdb.sink import CouchDBArchiveSink

    url = request.getfixturevalue("couchdb_url")
    couch = CouchDBArchiveSink("couch", CouchDBConfig(url=url, database=unique("browse-small")),
                               make_context(tmp_path))
    couch.open()
    monkeypatch.setattr(couch_index, "CHUNK", 4)  # one instant spans several requests
    ix = CouchArchiveIndex(couch)
    ix.covered = ix.covered and request.param == "couch"
    try:
        yield couch, ix
    finally:
        couch.client.request("DELETE", "")
        couch.close()


def pages_of(ix: Any, args: dict[str, str]) -> list[list[str]]:
    out, cursor = [], None
    while True:
        page = ix.search_calls(parse_filters({**args, **({"cursor": cursor} if cursor else {})}))
        out.append(ids(page))
        cursor = page.next_cursor
        if not cursor:
            return out


def test_many_records_of_one_instant_page_once_each(small: Any) -> None:
    sink, ix = small
    sink.write(calls([f"Caller {i}" for i in range(23)]))
    for hour in range(9):  # and a day of calls an hour apart
        sink.write(calls(["Early"], at=f"2026-11-29T0{hour}:00:00.000Z", prefix=f"early-{hour}"))
    span = (datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 12, 1, tzinfo=timezone.utc))
    days = [(d.day, d.records) for d in ix.days(*span)]  # CouchDB: in chunks of four
    assert days == [("2026-11-29", 9), ("2026-11-30", 23)] and len(set(ix.day_keys(*span))) == 32
    assert len(walk(ix, "search_calls", {"limit": "3", "until": "2026-11-29"})) == 9
    for args in ({"limit": "5", "since": "2026-11-30"}, {"limit": "5", "phone": "(650) 555-0123", "since": "2026-11-30"},
                 {"limit": "2", "name": "cALLER 1"}):
        pages = pages_of(ix, args)
        seen = [i for page in pages for i in page]
        assert all(len(p) <= int(args["limit"]) for p in pages), args
        expected = [f"call-{i:03d}" for i in range(23) if "name" not in args or str(i).startswith("1")]
        assert sorted(seen) == expected and len(seen) == len(set(seen)), args  # each once
        if isinstance(ix, LakeArchiveIndex):
            assert seen == sorted(expected, reverse=True), args  # newest first, then by id descending
        else:
            assert [seen.index(i) for i in sorted(seen, reverse=True)] == list(range(len(seen)))


def test_a_name_matches_as_sqlite_like_does(small: Any) -> None:
    """A-Z in either case, every other character as written; names JSON escapes (quotes) or a
    record stored with ASCII escapes throughout (a lone surrogate elsewhere in it) still match."""
    sink, ix = small
    sink.write(calls(['José "Pepe" Núñez', "JOSÉ PEPE", "José Bad\ud800", "Ann"]))
    cases = {"josé": {0, 2}, '"pepe"': {0}, "PEPE": {0, 1}, "é": {0, 2}, "É": {1}, "bad\ud800": {2},
             "ñ": {0}, "n": {0, 3}, "Ann": {3}, "anne": set()}
    for name, expected in cases.items():
        assert set(ids(ix.search_calls(parse_filters({"name": name, "limit": "50"})))) == \
            {f"call-{i:03d}" for i in expected}, name


def test_a_lake_detail_is_read_again_when_its_day_is_rewritten(tmp_path: Path) -> None:
    from rcetl.plugins.sinks.lake import LakeConfig
    from rcetl.plugins.sinks.lake.sink import LakeSink

    sink = LakeSink("lake", LakeConfig(path=str(tmp_path / "lake")), make_context(tmp_path))
    sink.open()
    sink.write(calls(["A", "B"]))
    ix = LakeArchiveIndex(sink)
    assert ix.call("1", "call-001").raw["duration"] == 1 and ix.call("1", "call-999") is None
    changed = calls(["A", "B"])[1]
    changed.record.data["duration"] = 700  # the day's file is rewritten: a remembered row is not reused
    sink.write([changed])
    assert ix.call("1", "call-001").raw["duration"] == 700
