"""Every typed column holds what the archived JSON says, for every row of a real run.

The sandbox's default data set (the demo's) is archived by one pipeline run into SQLite, PostgreSQL
and MongoDB (binaries into a folder). Then each row's typed columns are recomputed here from that
row's own ``raw`` and ``archive`` JSON, with this file's own reading of the RingCentral fields (not
the sink's mapper), and compared column by column. A typed column the sink adds without a rule here
fails the test, so a new column cannot stay unchecked; a column left NULL although the JSON has
its value (``rc_recordings.content_type`` once was, in every row) fails it too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import rcetl
from tests.e2e.stores import Opened, default_sandbox, drop_tables, run, write_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Raw = dict[str, Any]


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def when(value: Any) -> datetime | None:
    """RingCentral's ``2024-03-01T09:00:00.000Z`` as the naive UTC datetime SQL columns hold."""
    if not isinstance(value, str):
        return None
    return datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(
        microsecond=int((value[20:23] or "0").ljust(3, "0")) * 1000 if len(value) > 20 and value[19] == "." else 0
    ).replace(tzinfo=timezone.utc).replace(tzinfo=None)


def cut(value: Any, length: int | None = None) -> str | None:
    """Text as a column keeps it: lone surrogates replaced, NUL dropped, cut to the column's length."""
    if value is None or isinstance(value, (dict, list)):
        return None
    s = str(value).encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    return s[:length] if length else s


def as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def party(p: Any) -> Raw:
    return p if isinstance(p, dict) else {}


def party_columns(prefix: str, p: Any, *, extension: bool = True) -> dict[str, Callable[[], Any]]:
    p = party(p)
    cols: dict[str, Callable[[], Any]] = {
        f"{prefix}_number": lambda: cut(p.get("phoneNumber") or p.get("extensionNumber"), 64),
        f"{prefix}_e164": lambda: rcetl.normalize_phone(p.get("phoneNumber")),
        f"{prefix}_name": lambda: cut(p.get("name"), 255),
    }
    if extension:
        cols[f"{prefix}_extension_id"] = lambda: as_int(p.get("extensionId"))
    return cols


def call_columns(c: Raw) -> dict[str, Callable[[], Any]]:
    return {
        "start_time": lambda: when(c.get("startTime")),
        "duration": lambda: c.get("duration"),
        "type": lambda: c.get("type"),
        "direction": lambda: c.get("direction"),
        "action": lambda: c.get("action"),
        "result": lambda: c.get("result"),
        "reason": lambda: cut(c.get("reason"), 128),
        **party_columns("from", c.get("from")),
        **party_columns("to", c.get("to")),
        "extension_id": lambda: as_int(party(c.get("extension")).get("id")),
    }


def blob_columns(entry: Raw | None) -> dict[str, Callable[[], Any]]:
    entry = entry or {}
    locations = entry.get("locations") or {}
    return {
        "blob_id": lambda: entry.get("blob_id"),
        "blob_status": lambda: entry.get("status"),
        "location": lambda: locations[sorted(locations)[0]] if locations else None,
        "size": lambda: entry.get("size"),
        "sha256": lambda: entry.get("sha256"),
    }


def expected_call(raw: Raw, archive: list) -> dict[str, Callable[[], Any]]:
    return {
        "session_id": lambda: raw.get("sessionId"),
        "telephony_session_id": lambda: raw.get("telephonySessionId"),
        **call_columns(raw),
        "recording_id": lambda: party(raw.get("recording")).get("id"),
        "last_modified_time": lambda: when(raw.get("lastModifiedTime")),
    }


def expected_recording(raw: Raw, archive: list) -> dict[str, Callable[[], Any]]:
    call = party(raw.get("call"))
    entry = archive[0] if archive else {}
    return {
        "call_id": lambda: call.get("id"),
        "session_id": lambda: call.get("sessionId"),
        "start_time": lambda: when(call.get("startTime")),
        "duration": lambda: call.get("duration"),
        "direction": lambda: call.get("direction"),
        "type": lambda: raw.get("type"),
        # The call log's recording JSON has no contentType: the archive entry says what was stored.
        "content_type": lambda: raw.get("contentType") or entry.get("content_type"),
        "extension_id": lambda: as_int(party(call.get("extension")).get("id")),
        "from_number": lambda: cut(party(call.get("from")).get("phoneNumber")
                                   or party(call.get("from")).get("extensionNumber"), 64),
        "from_e164": lambda: rcetl.normalize_phone(party(call.get("from")).get("phoneNumber")),
        "to_number": lambda: cut(party(call.get("to")).get("phoneNumber")
                                 or party(call.get("to")).get("extensionNumber"), 64),
        "to_e164": lambda: rcetl.normalize_phone(party(call.get("to")).get("phoneNumber")),
        **blob_columns(entry),
    }


def expected_message(raw: Raw, archive: list) -> dict[str, Callable[[], Any]]:
    to = raw.get("to") if isinstance(raw.get("to"), list) else []
    return {
        "conversation_id": lambda: as_int(raw.get("conversationId")),
        "type": lambda: raw.get("type"),
        "direction": lambda: raw.get("direction"),
        "creation_time": lambda: when(raw.get("creationTime")),
        "last_modified_time": lambda: when(raw.get("lastModifiedTime")),
        **party_columns("from", raw.get("from")),
        **party_columns("to", to[0] if to else {}, extension=False),
        "subject": lambda: cut(raw.get("subject")),
        "read_status": lambda: raw.get("readStatus"),
        "message_status": lambda: raw.get("messageStatus"),
        "availability": lambda: raw.get("availability"),
        "attachment_count": lambda: len(raw.get("attachments") or []),
        "fax_page_count": lambda: raw.get("faxPageCount"),
    }


def expected_attachment(att: Raw, entry: Raw | None) -> dict[str, Callable[[], Any]]:
    blob = blob_columns(entry)
    return {
        "type": lambda: att.get("type"),
        "content_type": lambda: att.get("contentType") or (entry or {}).get("content_type"),
        "file_name": lambda: cut(att.get("fileName"), 255),
        **blob,
        # Bytes stored where a download happened, else the size the API declared.
        "size": lambda: (entry or {}).get("size") if (entry or {}).get("size") is not None else att.get("size"),
    }


# Columns that are the row's identity or its stored JSON, not values derived from it.
NOT_DERIVED = {"account", "id", "raw", "archive", "deleted", "call_id", "leg_index", "message_id"}


def check_row(table: str, row: Raw, expected: dict[str, Callable[[], Any]], problems: list[str]) -> None:
    typed = set(row) - NOT_DERIVED
    unchecked = typed - set(expected)
    if unchecked:
        problems.append(f"{table}: no rule in this test for column(s) {sorted(unchecked)}")
    for column, rule in expected.items():
        want, got = rule(), row.get(column)
        if isinstance(got, datetime) and got.tzinfo is not None:
            got = got.astimezone(timezone.utc).replace(tzinfo=None)
        if got != want:
            problems.append(f"{table} {row.get('id', row.get('call_id'))}: {column} is {got!r}, the JSON says {want!r}")


def check_sql_archive(engine: sa.Engine, prefix: str) -> dict[str, int]:
    """Compare every row of every typed table with its JSON; returns the rows checked per table."""
    problems: list[str] = []
    checked: dict[str, int] = {}
    md = sa.MetaData()
    md.reflect(engine, only=lambda name, _: name.startswith(prefix))
    t = {name[len(prefix):]: table for name, table in md.tables.items()}
    with engine.connect() as conn:
        calls = {r.id: as_json(r.raw) for r in conn.execute(sa.select(t["call_log"].c.id, t["call_log"].c.raw))}
        messages = {}
        for name, rule in (("call_log", expected_call), ("recordings", expected_recording),
                           ("messages", expected_message)):
            for r in conn.execute(sa.select(t[name])).mappings():
                raw, archive = as_json(r["raw"]), as_json(r["archive"]) or []
                if name == "messages":
                    messages[r["id"]] = (raw, archive)
                check_row(name, dict(r), rule(raw, archive), problems)
                checked[name] = checked.get(name, 0) + 1
        for r in conn.execute(sa.select(t["call_legs"])).mappings():
            leg = calls[r["call_id"]]["legs"][r["leg_index"]]
            check_row("call_legs", dict(r), {"leg_type": lambda leg=leg: leg.get("legType"), **call_columns(leg)},
                      problems)
            checked["call_legs"] = checked.get("call_legs", 0) + 1
        for r in conn.execute(sa.select(t["attachments"])).mappings():
            raw, archive = messages[r["message_id"]]
            att = next(a for a in raw["attachments"] if a["id"] == r["id"])
            entry = next((e for e in archive if e["blob_id"] == f"attachment-{r['message_id']}-{r['id']}"), None)
            check_row("attachments", dict(r), expected_attachment(att, entry), problems)
            checked["attachments"] = checked.get("attachments", 0) + 1
    assert not problems, f"{len(problems)} typed values differ from the JSON:\n" + "\n".join(problems[:40])
    return checked


def numbers(raw: Raw) -> set[str]:
    found = set()
    parties = [raw.get("from"), *(raw.get("to") if isinstance(raw.get("to"), list) else [raw.get("to")])]
    for leg in raw.get("legs") or []:
        parties += [leg.get("from"), leg.get("to")]
    for p in parties:
        n = rcetl.normalize_phone(party(p).get("phoneNumber"))
        if n:
            found.add(n)
    return found


def check_mongo_archive(db: Any) -> int:
    problems, checked = [], 0
    for doc in db.rc_call_log.find():
        raw = doc["data"]
        want = {"from_e164": rcetl.normalize_phone(party(raw.get("from")).get("phoneNumber")),
                "to_e164": rcetl.normalize_phone(party(raw.get("to")).get("phoneNumber")),
                "numbers_e164": sorted(numbers(raw))}
        problems += [f"call {doc['key']}: {k}" for k, v in want.items() if doc.get(k) != v]
        checked += 1
    for doc in db.rc_messages.find():
        raw = doc["data"]
        to = raw.get("to") or [{}]
        want = {"from_e164": rcetl.normalize_phone(party(raw.get("from")).get("phoneNumber")),
                "to_e164": rcetl.normalize_phone(party(to[0]).get("phoneNumber")), "numbers_e164": sorted(numbers(raw))}
        problems += [f"message {doc['key']}: {k}" for k, v in want.items() if doc.get(k) != v]
        checked += 1
    for doc in db.rc_recordings.find():
        call = party(doc["data"].get("call"))
        want = {"from_e164": rcetl.normalize_phone(party(call.get("from")).get("phoneNumber")),
                "to_e164": rcetl.normalize_phone(party(call.get("to")).get("phoneNumber"))}
        problems += [f"recording {doc['key']}: {k}" for k, v in want.items() if doc.get(k) != v]
        checked += 1
    assert not problems, problems[:40]
    return checked


def test_every_typed_column_matches_the_raw_json_of_a_real_run(tmp_path: Path, postgres_url: str,
                                                               mongodb_url: str, monkeypatch) -> None:
    monkeypatch.setenv("RCETL_HOME", str(tmp_path / "home"))
    prefix = f"tc{uuid.uuid4().hex[:10]}_"
    database = f"tc{uuid.uuid4().hex[:10]}"
    sinks = {
        "files": {"plugin": "filesystem", "path": str(tmp_path / "files")},
        "lite": {"plugin": "sqlite", "url": str(tmp_path / "archive.sqlite")},
        "pg": {"plugin": "postgres", "url": postgres_url, "table_prefix": prefix},
        "mongo": {"plugin": "mongodb", "url": mongodb_url, "database": database},
    }
    opened = Opened()
    pg = None
    with default_sandbox() as sb:
        try:
            summary = run(write_pipeline(tmp_path, sb, sinks))
            assert summary.status == "ok", summary.errors
            lite = sa.create_engine(f"sqlite:///{tmp_path / 'archive.sqlite'}")
            pg = sa.create_engine(postgres_url)
            for engine, table_prefix in ((lite, "rc_"), (pg, prefix)):
                checked = check_sql_archive(engine, table_prefix)
                # Every table was filled, so no rule above went unexercised.
                assert set(checked) == {"call_log", "call_legs", "recordings", "messages", "attachments"}, checked
                with engine.connect() as conn:
                    nulls = conn.execute(sa.text(
                        f"SELECT COUNT(*) FROM {table_prefix}recordings WHERE content_type IS NULL "
                        "OR (blob_status = 'stored' AND (size IS NULL OR sha256 IS NULL))")).scalar_one()
                    stored = conn.execute(sa.text(f"SELECT COUNT(*) FROM {table_prefix}recordings "
                                                  "WHERE blob_status = 'stored'")).scalar_one()
                assert (nulls, stored > 0) == (0, True)
            import pymongo

            with pymongo.MongoClient(mongodb_url) as client:
                assert check_mongo_archive(client[database]) > 0
                client.drop_database(database)
        finally:
            if pg is not None:
                class _Sink:  # what drop_tables needs: an engine and the prefix
                    engine = pg
                    tables = type("T", (), {"prefix": prefix})

                drop_tables(_Sink)
            opened.close()
