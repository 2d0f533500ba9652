"""PostgreSQL and MySQL/MariaDB write a large batch in parts through several connections at once
(``connections``, 2 by default), each part its own transaction: the rows are those one connection
writes, and a part the server refuses is reported once every part has ended."""

from __future__ import annotations

import threading

import pytest

import rcetl
from rcetl.plugins.sinks.sql import sink as sql_sink

from .dataset import ACCOUNT, make_dataset
from .test_sql_sink import snapshot

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("backend_url", ["postgres", "mysql"], indirect=True)]


def _spy_parts(monkeypatch) -> list[str]:  # noqa: ANN001
    threads: list[str] = []
    real = sql_sink.SqlSink._write_rows

    def spy(self, conn, batch, params=None):  # noqa: ANN001
        threads.append(threading.current_thread().name)
        return real(self, conn, batch, params)

    monkeypatch.setattr(sql_sink.SqlSink, "_write_rows", spy)
    return threads


def test_a_large_batch_goes_through_two_connections_and_equals_one(make_sql_sink, monkeypatch) -> None:
    ds = make_dataset(calls=2 * sql_sink._MIN_PART + 20, messages=10)
    threads = _spy_parts(monkeypatch)
    two = make_sql_sink()
    one = make_sql_sink(table_prefix=two.tables.prefix + "o", connections=1)
    assert two.write(ds.records) == one.write(ds.records)
    assert len(threads) == 3 and len(set(threads[:2])) == 2, threads  # two at once, then one
    xmin = two.engine.dialect.name == "postgresql"

    def rows(s):  # noqa: ANN001
        return [[r[:-1] if xmin else r for r in table] for _, table in sorted(s.items())]

    assert rows(snapshot(two)) == rows(snapshot(one))
    ds.assert_held_by(two)


def test_a_part_the_server_refuses_is_raised_after_every_part_ended(make_sql_sink) -> None:
    ds = make_dataset(calls=2 * sql_sink._MIN_PART + 20, messages=0)
    calls = ds.of("call-log")
    too_long = rcetl.ArchivedRecord(rcetl.Record("call-log", "x" * 80, {"id": "x" * 80}, account=ACCOUNT))
    sink = make_sql_sink()
    with pytest.raises(rcetl.PermanentError):
        sink.write([*calls, too_long])  # the server refuses an id longer than its column, in the last part
    # The first part is its own transaction, committed; the engine writes the batch again one by
    # one (upserts: nothing twice) and queues only the refused record.
    held = sink.count("call-log")
    assert 0 < held < len(calls)
    for ar in calls:
        sink.write([ar])
    assert sink.count("call-log") == len(calls)
