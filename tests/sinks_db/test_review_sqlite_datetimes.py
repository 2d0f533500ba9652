"""Review of 02485d5 (SQLite datetimes written by ``isoformat``): the sink's text must be exactly
SQLAlchemy's SQLite form ("YYYY-MM-DD HH:MM:SS.ffffff", the fraction always written), because
SQLite compares and sorts these columns as text. A form without the fraction for whole seconds (what
``isoformat(" ")`` alone writes, and the API's usual ``...:52.000Z``) sorts before SQLAlchemy's
``...:52.000000``: a range query bound by SQLAlchemy misses the row at its boundary, and rows written
by another SQLAlchemy program interleave wrongly."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

import rcetl

from .conftest import build_sink

TIMES = ["2024-03-01T09:00:00.000Z", "2024-03-01T09:00:00.123Z", "2024-03-01T09:00:01.000Z",
         "0999-12-31T23:59:59.999Z"]


def _call(i: int, start: str) -> rcetl.ArchivedRecord:
    data = {"id": f"call-{i}", "startTime": start, "lastModifiedTime": start, "duration": 1,
            "type": "Voice", "direction": "Inbound", "legs": [{"legType": "Accept", "startTime": start}]}
    return rcetl.ArchivedRecord(rcetl.Record("call-log", data["id"], data, account="acct"))


def test_sqlite_datetimes_are_sqlalchemys_text_and_compare_with_its_bound_values(tmp_path, run_ctx) -> None:
    sink = build_sink("sqlite", {"url": str(tmp_path / "archive.sqlite"), "table_prefix": "rv_"}, run_ctx)
    sink.open()
    try:
        sink.write([_call(i, t) for i, t in enumerate(TIMES)])
        t = sink.tables.call_log
        dialect = sink.engine.dialect
        processor = t.c.start_time.type.dialect_impl(dialect).bind_processor(dialect)
        with sink.engine.connect() as conn:
            stored = dict(conn.exec_driver_sql(
                f"SELECT id, start_time FROM {t.name}").all())  # the text SQLite compares
            for i, text in enumerate(TIMES):
                when = datetime.fromisoformat(text.replace("Z", ""))
                assert stored[f"call-{i}"] == processor(when)  # SQLAlchemy's own text for the value
                # bound by SQLAlchemy: equality and a range starting exactly at the value find the row
                assert conn.execute(sa.select(t.c.id).where(t.c.start_time == when)).scalar_one() == f"call-{i}"
                assert f"call-{i}" in conn.execute(sa.select(t.c.id).where(t.c.start_time >= when)).scalars().all()
            legs = sink.tables.call_legs
            leg_text = dict(conn.exec_driver_sql(f"SELECT call_id, start_time FROM {legs.name}").all())
            assert leg_text == stored
    finally:
        sink.close()
