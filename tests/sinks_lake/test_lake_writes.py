"""The lake sink's write path without a pipeline: each typed column holds the value of its own
field (rows are built as tuples in schema order, so a value in the wrong slot would land in a
neighbour's column), and the partition a sink remembers after writing it never hides another
writer's rows. Local folder only; nothing is mocked."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import rcetl
from rcetl.plugins.sinks.lake import LakeConfig
from rcetl.plugins.sinks.lake.sink import LakeSink
from rcetl.testing import make_context

DAY = datetime(2026, 3, 4, 10, 0, tzinfo=timezone.utc)


def lake(tmp_path: Path) -> LakeSink:
    sink = LakeSink("lake", LakeConfig(path=str(tmp_path / "lake")), make_context(tmp_path, "lake-writes"))
    sink.open()
    return sink


def call(key: str, **extra: Any) -> rcetl.ArchivedRecord:
    data = {"id": key, "sessionId": f"s-{key}", "telephonySessionId": f"t-{key}", "startTime": "2026-03-04T10:00:00.123Z",
            "duration": 42, "type": "Voice", "direction": "Inbound", "action": "Phone Call", "result": "Accepted",
            "from": {"phoneNumber": "(650) 555-0123", "name": "A"}, "to": {"extensionNumber": "101"},
            "extension": {"id": 77}, "recording": {"id": "r-1"}, "lastModifiedTime": "2026-03-04T11:00:00Z",
            "legs": [{"legType": "FindMe", "startTime": "2026-03-04T10:00:01Z", "duration": "7", "type": "Voice",
                      "direction": "Outbound", "action": "FindMe", "result": "Missed",
                      "from": {"phoneNumber": "+16505550123"}, "to": {"phoneNumber": "+442071838750"}}],
            **extra}
    return rcetl.ArchivedRecord(rcetl.Record("call-log", key, data, account="1", occurred_at=DAY))


def rows(sink: LakeSink, stream: str = "call-log") -> list[dict[str, Any]]:
    return [r for path in sink.files(stream) for r in pq.read_table(path).to_pylist()]


def test_every_typed_column_holds_its_own_field(tmp_path: Path) -> None:
    sink = lake(tmp_path)
    message = {"id": 2**60 + 1, "conversationId": 9, "type": "SMS", "direction": "Outbound",
               "creationTime": "2026-03-04T09:00:00Z", "lastModifiedTime": "2026-03-04T09:30:00Z",
               "from": {"phoneNumber": "+16505550199"}, "to": [{"phoneNumber": "6505550100"}, {"phoneNumber": "x"}],
               "subject": "hi", "availability": "Alive", "messageStatus": "Sent",
               "attachments": [{"id": 3, "type": "MmsAttachment", "contentType": "image/png", "fileName": "a.png",
                                "size": 10}]}
    recording = {"id": "r-1", "type": "Automatic", "contentType": "audio/mpeg",
                 "call": {"id": "c-1", "startTime": "2026-03-04T08:00:00Z", "duration": 5, "direction": "Inbound",
                          "extension": {"id": 5}, "from": {"phoneNumber": "+16505550111"}, "to": {"name": "B"}}}
    assert sink.write([call("c-1"), rcetl.ArchivedRecord(rcetl.Record("message-store", 2**60 + 1, message,
                                                                       account="1", occurred_at=DAY)),
                       rcetl.ArchivedRecord(rcetl.Record("recording", "r-1", recording, account="1",
                                                         occurred_at=DAY))]) == 3

    [c] = rows(sink)
    assert {k: c[k] for k in ("account", "key", "key_json", "deleted", "session_id", "telephony_session_id",
                              "duration", "type", "direction", "action", "result", "from_number", "from_e164",
                              "to_number", "to_e164", "extension_id", "recording_id")} == {
        "account": "1", "key": "c-1", "key_json": '"c-1"', "deleted": False, "session_id": "s-c-1",
        "telephony_session_id": "t-c-1", "duration": 42, "type": "Voice", "direction": "Inbound",
        "action": "Phone Call", "result": "Accepted", "from_number": "(650) 555-0123", "from_e164": "+16505550123",
        "to_number": "101", "to_e164": None, "extension_id": "77", "recording_id": "r-1"}
    assert c["start_time"] == datetime(2026, 3, 4, 10, 0, 0, 123000, tzinfo=timezone.utc)
    assert c["last_modified_time"] == datetime(2026, 3, 4, 11, tzinfo=timezone.utc)
    assert c["occurred_at"] == DAY
    assert rcetl.json_loads(c["raw"]) == call("c-1").record.data
    assert c["legs"] == [{"leg_type": "FindMe", "start_time": datetime(2026, 3, 4, 10, 0, 1, tzinfo=timezone.utc),
                          "duration": 7, "type": "Voice", "direction": "Outbound", "action": "FindMe",
                          "result": "Missed", "from_number": "+16505550123", "from_e164": "+16505550123",
                          "to_number": "+442071838750", "to_e164": "+442071838750", "extension_id": None}]

    [m] = rows(sink, "message-store")
    assert {k: m[k] for k in ("id", "conversation_id", "type", "direction", "from_e164", "to_number", "to_e164",
                              "subject", "availability", "message_status", "key_json")} == {
        "id": 2**60 + 1, "conversation_id": 9, "type": "SMS", "direction": "Outbound", "from_e164": "+16505550199",
        "to_number": "6505550100", "to_e164": "+16505550100", "subject": "hi", "availability": "Alive",
        "message_status": "Sent", "key_json": str(2**60 + 1)}
    assert m["creation_time"] == datetime(2026, 3, 4, 9, tzinfo=timezone.utc)
    assert m["attachments"] == [{"id": 3, "type": "MmsAttachment", "content_type": "image/png", "file_name": "a.png",
                                 "size": 10, "sha256": None, "status": None}]

    [r] = rows(sink, "recording")
    assert {k: r[k] for k in ("call_id", "duration", "direction", "type", "content_type", "extension_id",
                              "from_e164", "to_number", "size")} == {
        "call_id": "c-1", "duration": 5, "direction": "Inbound", "type": "Automatic", "content_type": "audio/mpeg",
        "extension_id": "5", "from_e164": "+16505550111", "to_number": None, "size": None}


def test_a_day_rewritten_by_another_writer_is_read_again(tmp_path: Path) -> None:
    """The sink remembers the day it last wrote; another writer's rows written since must survive."""
    first, second = lake(tmp_path), lake(tmp_path)
    assert first.write([call("a")]) == 1
    assert second.write([call("b")]) == 1  # another process or worker, same folder
    assert first.write([call("c")]) == 1
    assert sorted(r["key"] for r in rows(first)) == ["a", "b", "c"]


@pytest.mark.parametrize("same_sink", [True, False], ids=["remembered", "read-back"])
def test_an_unchanged_batch_writes_nothing_and_a_changed_one_replaces_its_row(tmp_path: Path, same_sink: bool) -> None:
    sink = lake(tmp_path)
    assert sink.write([call("a"), call("b")]) == 2
    [path] = sink.files("call-log")
    before = Path(path).stat().st_mtime_ns
    again = sink if same_sink else lake(tmp_path)
    assert again.write([call("a"), call("b")]) == 0
    assert Path(path).stat().st_mtime_ns == before, "a re-run rewrote the day"
    assert again.write([call("b", result="Missed")]) == 1
    assert sorted((r["key"], r["result"]) for r in rows(sink)) == [("a", "Accepted"), ("b", "Missed")]


def test_text_columns_take_what_arrow_refuses_as_text(tmp_path: Path) -> None:
    """Typed text columns go to Arrow as the API sent them; a column with a number, an object or a
    lone surrogate in it is converted value by value instead (the row keeps its exact raw JSON)."""
    sink = lake(tmp_path)
    odd = call("odd", type=7, sessionId=12345, direction={"x": 1},
               legs=[{"legType": "Find\udc80Me", "result": ["Missed"], "from": {"phoneNumber": "+16505550123"}}])
    assert sink.write([call("plain"), odd]) == 2
    got = {r["key"]: r for r in rows(sink)}
    assert (got["odd"]["type"], got["odd"]["session_id"], got["odd"]["direction"]) == ("7", "12345", None)
    assert [(leg["leg_type"], leg["result"], leg["from_e164"]) for leg in got["odd"]["legs"]] == [
        ("Find?Me", None, "+16505550123")]
    assert (got["plain"]["type"], got["plain"]["session_id"], got["plain"]["legs"][0]["leg_type"]) == (
        "Voice", "s-plain", "FindMe")
    assert rcetl.json_loads(got["odd"]["raw"]) == odd.record.data


def test_a_time_outside_the_calendar_in_utc_is_no_time(tmp_path: Path) -> None:
    """0001-01-01T00:30+01:00 is a valid ISO time whose UTC instant falls before year 1: the typed
    column is null (the raw JSON keeps it), not an OverflowError that fails the whole batch."""
    sink = lake(tmp_path)
    assert sink.write([call("early", startTime="0001-01-01T00:30:00+01:00", lastModifiedTime="9999-12-31T23:59:59-01:00")]) == 1
    [row] = rows(sink)
    assert (row["start_time"], row["last_modified_time"]) == (None, None)
    assert rcetl.json_loads(row["raw"])["startTime"] == "0001-01-01T00:30:00+01:00"
