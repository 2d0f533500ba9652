"""PostgreSQL: after a bulk fill the sink analyses, as it closes, the columns its indexes serve (the
planner's statistics for the queries people run, by number, date, extension), never the JSON
documents (unique each: their statistics help no plan); the rest of the table is left to
autovacuum, which still sees the fill as unanalysed."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from rcetl.plugins.sinks.sql import sink as sql_sink

from .dataset import make_dataset

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("backend_url", ["postgres"], indirect=True)]


def test_a_bulk_fill_is_analysed_at_close_on_its_indexed_columns_and_left_to_autovacuum(make_sql_sink, monkeypatch):
    monkeypatch.setattr(sql_sink, "_FULL_ANALYZE", 5)  # the dataset's dozen calls count as a bulk fill
    sink = make_sql_sink()
    sink.write(make_dataset().records)
    table = sink.tables.call_log.name
    indexed = {c.name for index in sink.tables.call_log.indexes for c in index.columns}
    engine = sa.create_engine(sink.engine.url)  # the sink's own engine is disposed at close
    sink.close()
    with engine.connect() as conn:
        analysed = {r[0] for r in conn.execute(sa.text("SELECT attname FROM pg_stats WHERE tablename = :t"), {"t": table})}
        changed = None
        for _ in range(50):  # statistics reach the shared counters within a second of a commit
            changed = conn.execute(sa.text("SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = :t"),
                                   {"t": table}).scalar()
            if changed:
                break
            time.sleep(0.1)
            conn.rollback()  # a new snapshot of the statistics
    engine.dispose()
    assert {"start_time", "from_e164", "to_e164", "extension_id", "recording_id"} <= indexed
    assert analysed == {"account", "id"} | indexed, analysed
    assert not analysed & {"raw", "archive", "direction"}, analysed
    # Autovacuum analyses a table once this exceeds 50 rows + 10 % of it: the partial ANALYZE
    # above must not have hidden the fill from it.
    assert changed and changed > 0, changed
