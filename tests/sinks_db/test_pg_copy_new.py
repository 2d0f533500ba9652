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
    assert copies and all(c.startswith("rcetl_stage_") for c in copies), copies
    assert snapshot(sink) == before


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
