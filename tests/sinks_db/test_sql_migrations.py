"""A newer rcetl upgrades an archive written by an older one in place, on every real database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import rcetl

from .dataset import make_dataset

pytestmark = pytest.mark.integration


def _legacy_value(table_name: str, column: sa.Column, row: dict, raws: dict) -> object:
    """What rcetl at an older schema stored in ``column``, written out here, not by the mapper."""
    name = column.name
    if name == "raw" and table_name.endswith("call_legs"):  # each leg's JSON again (until v3)
        return raws[("call-log", row["call_id"])]["legs"][row["leg_index"]]
    if name == "raw" and table_name.endswith("attachments"):
        return next(a for a in raws[("message-store", row["message_id"])]["attachments"] if a["id"] == row["id"])
    value = row[name]
    if name.endswith("_extension_id") and isinstance(column.type, sa.Unicode) and value is not None:
        return str(value)  # text until v3
    return value


def write_old_archive(sink, records, version: int) -> None:
    """What rcetl at schema ``version`` would have left: its tables, its columns, its version row."""
    from rcetl.plugins.sinks.sql import migrate
    from rcetl.plugins.sinks.sql.rows import to_rows
    from rcetl.plugins.sinks.sql.schema import build_tables
    from rcetl.plugins.sinks.sql.upsert import upsert_statement

    old = build_tables(sink.tables.prefix, version=version)
    batch = to_rows(records)
    raws = {(ar.record.stream, ar.record.key): ar.record.data for ar in records}
    with sink.engine.begin() as conn:
        migrate.create(conn, old)
        for name, rows in batch.tables.items():
            table = getattr(old, name)
            conn.execute(upsert_statement(table, conn.dialect),
                         [{c.name: _legacy_value(table.name, c, r, raws) for c in table.c} for r in rows.dicts()])


@pytest.mark.parametrize("from_version", [1, 2])
def test_upgrade_keeps_the_data_and_fills_the_new_columns(make_sql_sink, from_version):
    ds = make_dataset()
    old = make_sql_sink(open_=False)
    write_old_archive(old, ds.records, from_version)
    with old.engine.connect() as conn:
        assert "from_e164" not in {c["name"] for c in sa.inspect(conn).get_columns(old.tables.call_log.name)}

    sink = make_sql_sink()  # open() upgrades
    t = sink.tables
    with sink.engine.connect() as conn:
        assert conn.execute(sa.select(t.schema_version.c.version)).scalars().all() == [3]
        inspector = sa.inspect(conn)
        cols = {c["name"]: c for c in inspector.get_columns(t.call_log.name)}
        assert {"recording_id", "from_e164", "to_e164"} <= set(cols)
        # The leg's and attachment's JSON is no longer stored twice.
        assert "raw" not in {c["name"] for c in inspector.get_columns(t.call_legs.name)}
        assert "raw" not in {c["name"] for c in inspector.get_columns(t.attachments.name)}
        index_names = {i["name"] for i in inspector.get_indexes(t.call_log.name)}
        assert {f"{t.prefix}ix_call_from", f"{t.prefix}ix_call_to", f"{t.prefix}ix_call_rec"} <= index_names
        assert f"{t.prefix}ix_msg_conv" in {i["name"] for i in inspector.get_indexes(t.messages.name)}
        assert f"{t.prefix}ix_rec_call" in {i["name"] for i in inspector.get_indexes(t.recordings.name)}
        if conn.dialect.name != "sqlite":  # SQLite cannot add a constraint to an existing table
            fks = inspector.get_foreign_keys(t.call_legs.name)
            assert [(f["referred_table"], f["constrained_columns"]) for f in fks] == [
                (t.call_log.name, ["account", "call_id"])]

        recorded = conn.execute(sa.select(t.call_log.c.id, t.call_log.c.recording_id)
                                .where(t.call_log.c.recording_id.is_not(None))).all()
        assert {r.id for r in recorded} == {r.record.data["call"]["id"] for r in ds.of("recording")}
        pages = conn.execute(sa.select(t.messages.c.fax_page_count).where(t.messages.c.type == "Fax")).scalars()
        assert all(p and p >= 2 for p in pages)
        # Phone numbers are E.164 and extension ids are integers, for old rows too.
        for call in ds.of("call-log"):
            data = call.record.data
            row = conn.execute(sa.select(t.call_log).where(t.call_log.c.id == call.key)).one()
            assert row.from_e164 == rcetl.normalize_phone(data["from"]["phoneNumber"])
            assert row.to_e164 == rcetl.normalize_phone(data["to"].get("phoneNumber"))
            for leg_row in conn.execute(sa.select(t.call_legs).where(t.call_legs.c.call_id == call.key)):
                leg = data["legs"][leg_row.leg_index]
                assert leg_row.from_e164 == rcetl.normalize_phone(leg["from"].get("phoneNumber"))
                for side in ("from", "to"):
                    want = leg[side].get("extensionId")
                    assert getattr(leg_row, f"{side}_extension_id") == (int(want) if want is not None else None)
        leg_ext = conn.execute(sa.select(t.call_legs.c.to_extension_id)).scalars().all()
        assert any(type(v) is int for v in leg_ext)
        ext_ids = conn.execute(sa.select(t.messages.c.from_extension_id)).scalars().all()
        assert ext_ids and all(type(v) is int for v in ext_ids)
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
