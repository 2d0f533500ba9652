"""A newer rcetl upgrades an archive written by an older one in place, on every real database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import rcetl

from .dataset import make_dataset

pytestmark = pytest.mark.integration


def write_v1_archive(sink, records) -> None:
    """What rcetl at schema version 1 would have left: its tables, its columns, its version row."""
    from rcetl.plugins.sinks.sql import migrate
    from rcetl.plugins.sinks.sql.rows import to_rows
    from rcetl.plugins.sinks.sql.schema import build_tables
    from rcetl.plugins.sinks.sql.upsert import upsert_statement

    v1 = build_tables(sink.tables.prefix, version=1)
    batch = to_rows(records)
    with sink.engine.begin() as conn:
        migrate.create(conn, v1)
        for name, rows in batch.rows.items():
            table = getattr(v1, name)
            conn.execute(upsert_statement(table, conn.dialect), [{c.name: r[c.name] for c in table.c} for r in rows])


def test_upgrade_from_v1_keeps_the_data_and_fills_the_new_columns(make_sql_sink):
    ds = make_dataset()
    old = make_sql_sink(open_=False)
    write_v1_archive(old, ds.records)
    with old.engine.connect() as conn:
        assert "recording_id" not in {c["name"] for c in sa.inspect(conn).get_columns(old.tables.call_log.name)}

    sink = make_sql_sink()  # open() upgrades
    t = sink.tables
    with sink.engine.connect() as conn:
        assert conn.execute(sa.select(t.schema_version.c.version)).scalars().all() == [2]
        cols = {c["name"] for c in sa.inspect(conn).get_columns(t.call_log.name)}
        assert "recording_id" in cols
        index_names = {i["name"] for i in sa.inspect(conn).get_indexes(t.messages.name)}
        assert f"{t.prefix}ix_msg_conv" in index_names
        recorded = conn.execute(sa.select(t.call_log.c.id, t.call_log.c.recording_id)
                                .where(t.call_log.c.recording_id.is_not(None))).all()
        assert {r.id for r in recorded} == {r.record.data["call"]["id"] for r in ds.of("recording")}
        pages = conn.execute(sa.select(t.messages.c.fax_page_count).where(t.messages.c.type == "Fax")).scalars()
        assert all(p and p >= 2 for p in pages)
    for stream, keys in ds.keys.items():
        assert {e.key for e in sink.archived(stream)} == keys

    # Writing the same records after the upgrade changes nothing: the backfill matched the mapper.
    from .test_sql_sink import snapshot

    before = snapshot(sink)
    sink.write(ds.records)
    assert snapshot(sink) == before


def test_an_archive_newer_than_this_rcetl_is_refused(make_sql_sink):
    sink = make_sql_sink()
    with sink.engine.begin() as conn:
        conn.execute(sink.tables.schema_version.update().values(version=99))
    with pytest.raises(rcetl.PermanentError, match="newer than this rcetl"):
        make_sql_sink()
