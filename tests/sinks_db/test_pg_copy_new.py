"""PostgreSQL: rows known to be new are COPYed straight into their tables (no stage table, no
``ON CONFLICT``); the rest go through the stage and the upsert. A row taken for new that another
run archived meanwhile undoes only its own COPY (a savepoint) and is upserted instead."""

from __future__ import annotations

import copy
import logging

import pytest

import rcetl
from rcetl.plugins.sinks.sql import sink as sql_sink

from .dataset import make_dataset
from .test_sql_sink import snapshot

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("backend_url", ["postgres"], indirect=True)]


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The table each COPY of the test went into."""
    seen: list[str] = []
    real = sql_sink._copy

    def spy(conn, statement, columns):  # noqa: ANN001
        seen.append(statement.split()[1].strip('"'))
        return real(conn, statement, columns)

    monkeypatch.setattr(sql_sink, "_copy", spy)
    return seen


def test_a_first_write_copies_into_the_tables_and_a_rewrite_goes_through_the_stage(make_sql_sink, copies):
    ds = make_dataset()
    sink = make_sql_sink()
    prefix = sink.tables.prefix
    sink.write(ds.records)
    ds.assert_held_by(sink)
    # Parents with child tables are looked up anyway (their children are replaced): none was
    # archived, so they and their children are copied straight in; other tables use the stage.
    straight = {f"{prefix}call_log", f"{prefix}call_legs", f"{prefix}messages", f"{prefix}attachments"}
    assert straight <= set(copies), copies
    assert all(c in straight or c.startswith("rcetl_stage_") for c in copies), copies

    copies.clear()
    before = snapshot(sink)
    assert sink.write(ds.records) == 0  # all archived: upserted, nothing changed
    # The first fill's COPY of the calls met an archived key: undone, the fill is over, and the
    # batch went through the lookups, the stage and the upsert.
    assert copies[0] == f"{prefix}call_log" and not sink._first_fill, copies
    assert copies[1:] and all(c.startswith("rcetl_stage_") for c in copies[1:]), copies
    assert snapshot(sink) == before
    copies.clear()
    assert sink.write(ds.records) == 0  # the fill is over: straight to the lookups and the stage
    assert copies and all(c.startswith("rcetl_stage_") for c in copies), copies


def test_a_row_archived_meanwhile_is_upserted_not_duplicated(make_sql_sink, copies, monkeypatch, caplog):
    ds = make_dataset()
    calls = ds.of("call-log")
    sink = make_sql_sink()
    sink.write(calls[:3])
    # Another run archived calls[0] after this write looked for its parents: it finds none.
    monkeypatch.setattr(sink, "_existing", lambda conn, parent, keys: [])
    changed = copy.deepcopy(calls[0])
    changed.record.data["result"] = "Voicemail"
    with caplog.at_level(logging.INFO, logger=sql_sink.__name__):
        assert sink.write([changed, *calls[3:]]) == len(calls) - 2  # the new calls and the changed one
    assert "archived meanwhile" in caplog.text
    assert sink.count("call-log") == len(calls)
    with sink.engine.connect() as conn:
        t = sink.tables
        result = conn.execute(t.call_log.select().where(t.call_log.c.id == changed.key)).mappings().one()
    assert result["result"] == "Voicemail"


def test_a_bad_row_in_a_copy_still_fails_the_whole_batch(make_sql_sink):
    ds = make_dataset()
    sink = make_sql_sink()
    bad = rcetl.ArchivedRecord(rcetl.Record("call-log", "x" * 80, {"id": "x" * 80}, account=ds.of("call-log")[0].record.account))
    with pytest.raises(rcetl.PermanentError):
        sink.write([*ds.of("call-log"), bad])  # an id longer than its column
    assert sink.count("call-log") == 0


def test_a_first_fill_looks_no_key_up_until_a_key_is_archived_already(make_sql_sink):
    """Tables empty when the sink opened take batches as new without a lookup and are not analysed
    while the fill lasts; a call sent again (with a leg fewer) ends it, undoes only its own batch's
    COPY and goes the usual way: its stale leg removed, nothing duplicated, the tables analysed."""
    import sqlalchemy as sa

    ds = make_dataset()
    calls = [c for c in ds.of("call-log") if len(c.record.data.get("legs") or []) >= 2]
    assert len(calls) >= 2
    sink = make_sql_sink()
    statements: list[str] = []
    sa.event.listen(sink.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql))
    assert sink._first_fill == {"call_log", "messages"}
    sink.write(calls[:1])
    sink.write(calls[1:])
    assert not [s for s in statements if s.lstrip().upper().startswith(("SELECT", "ANALYZE"))], statements
    assert sink._first_fill

    shorter = copy.deepcopy(calls[0])
    shorter.record.data["legs"] = shorter.record.data["legs"][:1]
    assert sink.write([shorter]) == 1  # changed: one leg fewer
    assert not sink._first_fill
    assert any(s.lstrip().upper().startswith("ANALYZE") for s in statements), statements
    with sink.engine.connect() as conn:
        legs = sink.tables.call_legs
        n = conn.execute(sa.select(sa.func.count()).select_from(legs).where(legs.c.call_id == shorter.key)).scalar()
        total = conn.execute(sa.select(sa.func.count()).select_from(sink.tables.call_log)).scalar()
    assert n == 1
    assert total == len(calls)
