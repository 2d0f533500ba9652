"""PostgreSQL: after a bulk fill the sink analyses every typed column as it closes (the planner's
statistics for the queries people run), but not the JSON documents (unique each: their statistics
help no plan and cost most of the ANALYZE)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from rcetl.plugins.sinks.sql import sink as sql_sink

from .dataset import make_dataset

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("backend_url", ["postgres"], indirect=True)]


def test_a_bulk_fill_is_analysed_at_close_except_its_json(make_sql_sink, monkeypatch):
    monkeypatch.setattr(sql_sink, "_FULL_ANALYZE", 5)  # the dataset's dozen calls count as a bulk fill
    sink = make_sql_sink()
    sink.write(make_dataset().records)
    table = sink.tables.call_log.name
    engine = sa.create_engine(sink.engine.url)  # the sink's own engine is disposed at close
    sink.close()
    with engine.connect() as conn:
        analysed = {r[0] for r in conn.execute(sa.text("SELECT attname FROM pg_stats WHERE tablename = :t"), {"t": table})}
    engine.dispose()
    assert {"account", "id", "start_time", "from_e164", "to_e164", "extension_id"} <= analysed, analysed
    assert not analysed & {"raw", "archive"}, analysed
