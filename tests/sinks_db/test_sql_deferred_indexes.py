"""A new archive's secondary indexes are built once its first fill is over (as bulk loaders do), and
every open builds those a fill that never reached its close left out: whatever happened, a run ends
with every index, and rewrites stay no-ops."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from .dataset import make_dataset
from .test_sql_sink import snapshot

pytestmark = pytest.mark.integration


def missing(sink) -> set[str]:
    """The secondary indexes the schema declares that the database does not have."""
    with sink.engine.connect() as conn:
        inspector = sa.inspect(conn)
        present = {i["name"] for t in sink.tables.data_tables()
                   for i in inspector.get_indexes(t.name, schema=t.schema)}
    return {str(i.name) for t in sink.tables.data_tables() for i in t.indexes} - present


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
