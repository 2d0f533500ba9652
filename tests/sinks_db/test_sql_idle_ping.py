"""A pooled connection is pinged before use only after it sat idle (a run's batches reuse it back
to back without a round trip each); one the server dropped while idle is found dead by the ping and
replaced, so the next write succeeds as with SQLAlchemy's pool_pre_ping."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from rcetl.plugins.sinks.sql import sink as sql_sink

from .dataset import make_dataset

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("backend_url", ["postgres", "mysql"], indirect=True)]


def _server_id(conn: sa.Connection) -> int:
    sql = "SELECT pg_backend_pid()" if conn.dialect.name == "postgresql" else "SELECT CONNECTION_ID()"
    return int(conn.exec_driver_sql(sql).scalar_one())


def _kill(url: sa.URL, server_id: int) -> None:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_terminate_backend({server_id})")
        else:
            conn.exec_driver_sql(f"KILL {server_id}")
    engine.dispose()


def test_a_connection_dropped_while_idle_is_replaced_before_the_next_write(make_sql_sink, monkeypatch) -> None:
    ds = make_dataset()
    sink = make_sql_sink()
    sink.write(ds.of("call-log")[:3])
    with sink.engine.connect() as conn:
        dropped = _server_id(conn)
    _kill(sink.engine.url, dropped)
    monkeypatch.setattr(sql_sink, "_IDLE_PING", 0.0)  # it has been idle long enough
    sink.write(ds.of("call-log")[3:])
    assert sink.count("call-log") == len(ds.of("call-log"))
    with sink.engine.connect() as conn:
        assert _server_id(conn) != dropped


def test_connections_used_back_to_back_are_not_pinged(make_sql_sink, monkeypatch) -> None:
    ds = make_dataset()
    sink = make_sql_sink()
    pings: list[object] = []
    real = sink.engine.dialect.do_ping
    monkeypatch.setattr(sink.engine.dialect, "do_ping", lambda c: pings.append(c) or real(c))
    for ar in ds.of("call-log"):
        sink.write([ar])
    assert pings == []
    monkeypatch.setattr(sql_sink, "_IDLE_PING", 0.0)
    sink.write(ds.of("call-log")[:1])
    assert len(pings) == 1
