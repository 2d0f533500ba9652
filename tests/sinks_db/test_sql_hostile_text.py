"""Text of any content reaches every SQL database exactly: quotes, backslashes, ``%`` signs, SQL
fragments, emoji, non-Latin scripts. On MariaDB/MySQL
the sink writes rows as SQL literals of its own (hex text, see ``sink._mysql_literal``), so this is
the test that a value can never escape its literal there; on the others it is the drivers'."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

import rcetl

pytestmark = pytest.mark.integration

HOSTILE = [
    "O'Brien", "back\\slash", "\\'; DROP TABLE x; --", "100% %s %(name)s", '"quoted"', "tab\tnew\nline",
    "emoji 📞☎️", "日本語の名前", "Ωμέγα", "0x41", "X'41'", "_utf8mb4 X'41'", "", " ", "a" * 300,
]


def call(i: int, name: str, raw_extra: dict | None = None) -> rcetl.ArchivedRecord:
    data = {"id": f"hostile-{i}", "sessionId": str(i), "startTime": "2024-03-01T09:00:00.123Z", "duration": 7,
            "type": "Voice", "direction": "Inbound", "result": name[:64] or "Accepted",
            "from": {"phoneNumber": "+16505550123", "name": name}, "to": {"extensionNumber": "101", "name": name},
            "legs": [{"legType": "Accept", "from": {"name": name}, "to": {"phoneNumber": "+442071838750"}}],
            **(raw_extra or {})}
    return rcetl.ArchivedRecord(rcetl.Record("call-log", data["id"], data, account="acct"))


def test_hostile_text_round_trips_into_typed_columns_and_raw(make_sql_sink):
    batch = [call(i, name) for i, name in enumerate(HOSTILE)]
    sink = make_sql_sink()
    sink.write(batch)
    t = sink.tables
    with sink.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(t.call_log))}
        legs = {r.call_id: r for r in conn.execute(sa.select(t.call_legs))}
    assert len(rows) == len(batch) and len(legs) == len(batch)
    for i, name in enumerate(HOSTILE):
        row = rows[f"hostile-{i}"]
        assert row.from_name == name[:255] and row.to_name == name[:255] and legs[row.id].from_name == name[:255]
        assert row.result == (name[:64] or "Accepted")
        assert row.start_time == datetime(2024, 3, 1, 9, 0, 0, 123000)
        assert row.from_e164 == "+16505550123" and legs[row.id].to_e164 == "+442071838750"
        raw = row.raw if isinstance(row.raw, dict) else rcetl.json_loads(row.raw)
        assert raw == batch[i].record.data
    sink.write(batch)  # a rewrite is a no-op, however the values were sent
    with sink.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.call_log)).scalar_one() == len(batch)
