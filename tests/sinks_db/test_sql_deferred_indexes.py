"""A new archive's secondary indexes are built once its first fill is over (as bulk loaders do), and
every open builds those a fill that never reached its close left out: whatever happened, a run ends
with every index, and rewrites stay no-ops."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from .dataset import make_dataset
from .test_sql_sink import snapshot

pytestmark = pytest.mark.integration


def _absent(sink, declared, reflect: str) -> set[str]:
    """The names of what ``declared(table)`` gives for each data table that the database lacks
    (``reflect``: the inspector's method listing what it has)."""
    with sink.engine.connect() as conn:
        inspector = sa.inspect(conn)
        present = {item["name"] for t in sink.tables.data_tables()
                   for item in getattr(inspector, reflect)(t.name, schema=t.schema)}
    return {str(item.name) for t in sink.tables.data_tables() for item in declared(t)} - present


def missing(sink) -> set[str]:
    """The secondary indexes the schema declares that the database does not have."""
    return _absent(sink, lambda t: t.indexes, "get_indexes")


def missing_keys(sink) -> set[str]:
    """The foreign keys the schema declares that the database does not have."""
    return _absent(sink, lambda t: t.foreign_key_constraints, "get_foreign_keys")


def test_a_first_fill_keeps_only_primary_keys_and_ends_with_every_index(make_sql_sink):
    ds = make_dataset()
    sink = make_sql_sink()
    declared = {str(i.name) for t in sink.tables.data_tables() for i in t.indexes}
    assert missing(sink) == declared  # a new archive: built after the fill
    sink.write(ds.records)
    sink.close()
    assert missing(sink) == set()

    again = make_sql_sink()  # an archive with rows and indexes: nothing deferred, nothing rebuilt
    assert missing(again) == set()
    ds.assert_held_by(again)
    ds.assert_rewrites_change_nothing(again, snapshot)
    again.close()
    assert missing(again) == set()


def test_a_fill_that_never_reached_its_close_gets_its_indexes_at_the_next_open(make_sql_sink):
    ds = make_dataset()
    killed = make_sql_sink()
    killed.write(ds.records)  # no close: the process died here
    assert missing(killed)

    next_run = make_sql_sink()
    assert missing(next_run) == set()  # built by the open, before anything is written
    assert missing_keys(next_run) == set()  # PostgreSQL's foreign keys too, checked against the rows
    ds.assert_held_by(next_run)
    ds.assert_rewrites_change_nothing(next_run, snapshot)


def test_an_open_that_writes_nothing_leaves_an_empty_archive_to_its_first_fill(make_sql_sink):
    ds = make_dataset()
    make_sql_sink().close()  # e.g. `rcetl check` or a run with nothing new: every index built at close
    sink = make_sql_sink()
    assert missing(sink) == set()  # an open never drops an index
    sink.write(ds.records)
    sink.close()
    assert missing(sink) == set()


def _orphan_leg(sink) -> None:
    legs = sink.tables.call_legs
    with sink.engine.begin() as conn:
        conn.execute(legs.insert().values(account="acct-none", call_id="no-such-call", leg_index=0))


def test_postgres_adds_a_first_fills_foreign_keys_once_it_is_over_and_then_they_hold(make_sql_sink, backend_url):
    """PostgreSQL checks a foreign key per child row with a trigger that locks the parent row: a
    first fill leaves them out and adds them at close (one join each). Elsewhere they come with
    the tables (MySQL would rebuild a table to add one; SQLite cannot)."""
    ds = make_dataset()
    sink = make_sql_sink()
    declared = {str(k.name) for t in sink.tables.data_tables() for k in t.foreign_key_constraints}
    assert declared  # the call legs' and attachments' keys to their parents
    if backend_url[0] == "postgres":
        assert missing_keys(sink) == declared
    else:
        assert missing_keys(sink) == set()
    sink.write(ds.records)
    sink.close()
    assert missing_keys(sink) == set()
    if backend_url[0] != "sqlite":  # SQLite checks them only with PRAGMA foreign_keys (docs say so)
        with pytest.raises(sa.exc.IntegrityError):
            _orphan_leg(sink)

    again = make_sql_sink()  # an archive with its keys: the rewrite keeps them and the rows
    ds.assert_rewrites_change_nothing(again, snapshot)
    again.close()
    assert missing_keys(again) == set()

