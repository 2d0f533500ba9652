"""The SQL sink against real SQLite, MariaDB/MySQL and PostgreSQL servers (see services.py)."""

from __future__ import annotations

import copy

import pytest
import sqlalchemy as sa

import rcetl
from tests.servers import drop_tables

from .conftest import build_sink
from .dataset import ACCOUNT, BIG_CONVERSATION, BIG_ID, MAX_ID, make_dataset

pytestmark = pytest.mark.integration


def snapshot(sink) -> dict[str, list[tuple]]:
    """Every row of every table, in key order; on PostgreSQL with ``xmin``, which changes whenever
    a row is rewritten, so an unchanged snapshot proves the upsert did not touch the row at all."""
    out = {}
    with sink.engine.connect() as conn:
        for table in sink.tables.data_tables():
            cols = list(table.c)
            if conn.dialect.name == "postgresql":
                cols.append(sa.literal_column("xmin::text"))
            out[table.name] = [tuple(r) for r in conn.execute(sa.select(*cols).order_by(*table.primary_key.columns))]
    return out


def table_count(sink, table: sa.Table) -> int:
    with sink.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_dataset_archives_with_exact_counts_and_ids_and_a_rewrite_changes_nothing(make_sql_sink):
    ds = make_dataset()
    sink = make_sql_sink(batch_size=7)  # several statements per table
    sink.write(ds.records)

    ds.assert_held_by(sink)
    assert table_count(sink, sink.tables.call_legs) == ds.legs
    assert table_count(sink, sink.tables.attachments) == ds.attachments

    ds.assert_rewrites_change_nothing(sink, snapshot)


def test_typed_columns_hold_the_fields_people_filter_on(make_sql_sink):
    ds = make_dataset()
    sink = make_sql_sink()
    sink.write(ds.records)
    t = sink.tables
    call = ds.of("call-log")[0].record.data
    with sink.engine.connect() as conn:
        row = conn.execute(sa.select(t.call_log).where(t.call_log.c.id == call["id"])).one()
        assert (row.direction, row.result, row.extension_id, row.duration) == ("Outbound", "Missed", 101, 30)
        assert row.start_time.isoformat() == "2024-03-01T09:00:00"
        assert row.from_name == call["from"]["name"] and row.recording_id == call["recording"]["id"]
        assert row.raw == call  # the full record, unicode and hostile strings intact
        long_name = conn.execute(sa.select(t.call_log.c.from_name, t.call_log.c.raw)
                                 .where(t.call_log.c.from_name.like("xxx%"))).first()
        assert len(long_name.from_name) == 255 and len(long_name.raw["from"]["name"]) == 300
        rec = conn.execute(sa.select(t.recordings).where(t.recordings.c.call_id == call["id"])).one()
        assert rec.location == f"archive/recording/recording-{call['recording']['id']}" and len(rec.sha256) == 64
        faxes = conn.execute(sa.select(t.messages.c.fax_page_count).where(t.messages.c.type == "Fax")).scalars().all()
        assert faxes and all(n >= 2 for n in faxes)
        assert conn.execute(sa.select(t.attachments.c.file_name).where(t.attachments.c.message_id == BIG_ID)
                            ).scalars().all() == ["0-sms.txt"]


def test_record_updated_at_source_is_updated_in_place(make_sql_sink):
    ds = make_dataset()
    sink = make_sql_sink()
    call, fax = ds.write_then_update(sink)

    t = sink.tables
    with sink.engine.connect() as conn:
        row = conn.execute(sa.select(t.call_log).where(t.call_log.c.id == call.key)).one()
        assert row.result == "Voicemail" and row.last_modified_time.isoformat() == "2024-04-02T10:00:00"
        legs = conn.execute(sa.select(t.call_legs.c.leg_index).where(t.call_legs.c.call_id == call.key)).all()
        assert len(legs) == 1  # the children were replaced, not added to
        msg = conn.execute(sa.select(t.messages).where(t.messages.c.id == fax.key)).one()
        assert msg.deleted and msg.availability == "Deleted"
        atts = conn.execute(sa.select(t.attachments.c.id).where(t.attachments.c.message_id == fax.key)).all()
        assert len(atts) == 1
    assert table_count(sink, t.call_legs) == ds.legs - 1
    assert table_count(sink, t.attachments) == ds.attachments - 1
    deleted = [e for e in sink.archived("message-store") if e.deleted]
    assert [e.key for e in deleted] == [fax.key]


def test_message_ids_above_2_to_the_53_round_trip_exactly(make_sql_sink):
    ds = make_dataset(calls=0, messages=2)
    sink = make_sql_sink()
    sink.write(ds.records)
    assert sorted(e.key for e in sink.archived("message-store")) == [BIG_ID, MAX_ID]
    t = sink.tables
    with sink.engine.connect() as conn:
        row = conn.execute(sa.select(t.messages).where(t.messages.c.id == BIG_ID)).one()
        assert row.id == BIG_ID and row.conversation_id == BIG_CONVERSATION
        assert row.raw["id"] == BIG_ID and row.raw["conversationId"] == BIG_CONVERSATION
        assert isinstance(row.raw["id"], int)
        fax_attachments = conn.execute(sa.select(t.attachments.c.id).where(t.attachments.c.message_id == MAX_ID))
        assert sorted(fax_attachments.scalars()) == [MAX_ID - 1, MAX_ID]
    generic = {e.key for e in sink.archived("acme-tickets")}
    assert generic == {42, "42", BIG_ID}


def test_single_record_writes_and_empty_batches(make_sql_sink):
    ds = make_dataset(calls=3, messages=3)
    sink = make_sql_sink()
    sink.write([])
    for r in ds.records:
        sink.write([r])
    assert sink.count("call-log") == 3 and sink.count("message-store") == 3


def test_key_of_the_wrong_type_is_a_permanent_error_naming_the_record(make_sql_sink):
    sink = make_sql_sink()
    bad = rcetl.ArchivedRecord(rcetl.Record("message-store", "123", {"id": 123}, account=ACCOUNT))
    with pytest.raises(rcetl.PermanentError, match=r"message-store/'123'"):
        sink.write([bad])


def test_an_older_archive_is_refused_without_create_tables(make_sql_sink):
    with pytest.raises(rcetl.PermanentError, match="create_tables"):
        make_sql_sink(create_tables=False)


# PostgreSQL's jsonb is the database here that refuses a NUL character: only its case runs.
@pytest.mark.parametrize("backend_url", ["postgres"], indirect=True)
def test_postgres_rejected_row_is_permanent_and_names_the_key(make_sql_sink, backend_url):
    ds = make_dataset(calls=2, messages=0)
    sink = make_sql_sink()
    bad = copy.deepcopy(ds.of("call-log")[1])
    bad.record.data["from"]["name"] = "nul\x00byte"
    with pytest.raises(rcetl.PermanentError, match=repr(bad.key)) as err:
        sink.write([bad])
    assert not isinstance(err.value, rcetl.TransientError)
    sink.write([ds.of("call-log")[0]])  # the connection is fine for the next record
    assert sink.count("call-log") == 1


def test_unreachable_server_is_transient(run_ctx, backend_url):
    name, _ = backend_url
    urls = {"mysql": "mysql://root@127.0.0.1:1/test", "postgres": "postgresql://postgres@127.0.0.1:1/test",
            "sqlite": "/nonexistent-dir/for/sure/archive.sqlite", "mssql": "mssql://sa:x@127.0.0.1:1/master"}
    sink = build_sink(name, {"url": urls[name]}, run_ctx)
    ds = make_dataset(calls=1, messages=0)
    with pytest.raises(rcetl.TransientError, match="VgLcd1KWffJVzUA0|vGlCD1kwFFjvZua0"):
        sink.write(ds.records)
    with pytest.raises(rcetl.RcetlError, match="cannot connect"):
        sink.check()
    sink.close()


def test_a_record_twice_in_one_batch_and_a_repeated_attachment_id(make_sql_sink):
    ds = make_dataset(calls=1, messages=3)
    fax = copy.deepcopy(next(r for r in ds.of("message-store") if r.record.data["type"] == "Fax"))
    fax.record.data["attachments"].append(dict(fax.record.data["attachments"][0]))
    newer = copy.deepcopy(fax)
    newer.record.data["readStatus"] = "Read"
    sink = make_sql_sink()
    sink.write([fax, newer])  # one statement may not touch a row twice: the last version wins
    with sink.engine.connect() as conn:
        t = sink.tables
        assert conn.execute(sa.select(t.messages.c.read_status)).scalar_one() == "Read"
        assert table_count(sink, t.attachments) == 2


def test_a_large_batch_is_written_whole(make_sql_sink):
    """A batch of hundreds of records (an engine batch; PostgreSQL and MySQL write it in parts
    through two connections): the last version of a record wins across the parts, the rows equal
    those of record-by-record writes, and a record refused while its rows are made leaves nothing
    of the batch behind."""
    ds = make_dataset(calls=540, messages=30)
    first = ds.of("call-log")[0]
    newer = copy.deepcopy(first)
    newer.record.data["result"] = "Voicemail"
    newer.record.data["legs"] = newer.record.data["legs"][:1]
    batch = [first, *ds.records[1:], newer]  # the call again, changed, in the batch's last part

    sink = make_sql_sink()
    one_by_one = make_sql_sink(table_prefix=sink.tables.prefix + "x")
    try:
        sink.write(batch)
        for ar in batch:
            one_by_one.write([ar])
        xmin = sink.engine.dialect.name == "postgresql"  # snapshot's last column there: row versions differ

        def rows(s):
            return [[r[:-1] if xmin else r for r in table] for _, table in sorted(s.items())]

        assert rows(snapshot(sink)) == rows(snapshot(one_by_one))
        ds.assert_held_by(sink)
        with sink.engine.connect() as conn:
            t = sink.tables
            assert conn.execute(sa.select(t.call_log.c.result).where(t.call_log.c.id == first.key)).scalar_one() \
                == "Voicemail"
            assert conn.execute(sa.select(sa.func.count()).select_from(t.call_legs)
                                .where(t.call_legs.c.call_id == first.key)).scalar_one() == 1

        fresh = make_sql_sink(table_prefix=sink.tables.prefix + "y")
        bad = rcetl.ArchivedRecord(rcetl.Record("message-store", "123", {"id": 123}, account=ACCOUNT))
        with pytest.raises(rcetl.PermanentError, match=r"message-store/'123'"):
            fresh.write([*ds.records, bad])
        assert all(fresh.count(stream) == 0 for stream in ds.keys)
    finally:
        drop_tables(one_by_one)


@pytest.mark.parametrize("backend_url", ["postgres"], indirect=True)  # a PostgreSQL planner question
def test_postgres_finds_archived_parents_by_key_not_by_account(make_sql_sink, backend_url):
    """Looking up which parents of a batch are already archived (to find stale legs) must be an
    index lookup on (account, id). With an empty table's statistics PostgreSQL planned it as a scan
    of the account's rows, filtered by id: 60 ms a batch and growing (12.4 M index tuples at 100k)."""
    ds = make_dataset(calls=3000, messages=0)
    calls = ds.of("call-log")

    def plan_of_lookup(sink) -> str:
        t = sink.tables.call_log
        keys = ", ".join(f"'x{i}'" for i in range(500))  # the sink's own query: one array of keys
        with sink.engine.connect() as conn:
            return "\n".join(conn.exec_driver_sql(
                f"EXPLAIN SELECT id FROM {t.name} WHERE account = '{ACCOUNT}' AND id = ANY(ARRAY[{keys}])").scalars())

    def by_account_only(plan: str) -> list[str]:
        # A sequential scan of a small table is the planner's fair choice; an index used for the
        # account alone is the pathology (every row of the account fetched, then filtered by id).
        return [line for line in plan.splitlines() if "Index Cond" in line and "(id)" not in line and "account" in line]

    # A first fill looks no key up (and analyses nothing while it lasts) until a key is archived
    # already: its lookups from then on must find the statistics they need.
    sink = make_sql_sink()
    for start in range(0, len(calls), 1000):
        sink.write(calls[start:start + 1000])
    sink.write(calls[:10])
    assert not sink._first_fill
    plan = plan_of_lookup(sink)
    assert not by_account_only(plan), plan
    # A first fill that ends with its run (too small for the bulk ANALYZE): the next run's lookups too.
    sink.close()
    drop_tables(sink)
    small = make_sql_sink()
    small.write(calls[:1000])
    assert small._first_fill
    small.close()
    plan = plan_of_lookup(make_sql_sink())
    assert not by_account_only(plan), plan
