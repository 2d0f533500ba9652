"""The state store against SQLite and, where reachable, real PostgreSQL and MariaDB servers."""

from __future__ import annotations

import multiprocessing
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from rcetl.state import Backoff, StateStore
from tests.services import service_url


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def store(request, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:10]}_"  # tests run in parallel: every test gets its own tables
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/state/state.db"
    else:
        url = service_url(request.param)  # skip on a laptop without the server, fail on CI
    state = StateStore(url, table_prefix=prefix, backoff=Backoff(base=60, cap=3600))
    yield state
    if request.param != "sqlite":
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            for table in reversed(state.tables.version.metadata.sorted_tables):
                table.drop(conn, checkfirst=True)
            sa.Table(f"{prefix}schema_version", sa.MetaData()).drop(conn, checkfirst=True)
        engine.dispose()
    state.close()


def _first_use(store: StateStore, worker: int) -> None:
    for i in range(10):
        store.put_checkpoint("p", "rc", "call_log", f"w{worker}", i)


def test_two_processes_open_a_fresh_database_at_once(store):
    # Both create the tables on first use: the loser of the race must find the work done.
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_first_use, args=(store, w)) for w in range(2)]
    for proc in workers:
        proc.start()
    for proc in workers:
        proc.join(60)
    assert [proc.exitcode for proc in workers] == [0, 0]
    assert {r.partition: r.value for r in store.checkpoints("p")} == {"w0": 9, "w1": 9}


BIG = 2**63 - 1  # message ids exceed 2**53: a float would round them


def test_checkpoints_round_trip_and_upsert(store):
    assert store.get_checkpoint("nightly", "rc", "call_log", "") is None
    store.put_checkpoint("nightly", "rc", "call_log", "", {"dateFrom": "2026-01-01T00:00:00Z", "id": BIG})
    store.put_checkpoint("nightly", "rc", "call_log", "", {"dateFrom": "2026-02-01T00:00:00Z", "id": BIG - 1})
    store.put_checkpoint("nightly", "rc", "messages", "ext-1", [1, "two"])
    store.put_checkpoint("other", "rc", "call_log", "", 7)
    assert store.get_checkpoint("nightly", "rc", "call_log", "") == {
        "dateFrom": "2026-02-01T00:00:00Z",
        "id": BIG - 1,
    }
    rows = store.checkpoints("nightly")
    assert [(r.stream, r.partition, r.value) for r in rows] == [
        ("call_log", "", {"dateFrom": "2026-02-01T00:00:00Z", "id": BIG - 1}),
        ("messages", "ext-1", [1, "two"]),
    ]
    assert all(r.updated_at.tzinfo is not None for r in rows)


def test_reset_keeps_failed_items_unless_asked(store):
    store.put_checkpoint("p", "rc", "call_log", "", 1)
    store.put_checkpoint("p", "rc", "messages", "", 2)
    store.add_failed("p", "call_log", "acc", "abc", {"id": "abc"}, "timeout")
    assert store.reset("p", "call_log") == 1
    assert store.get_checkpoint("p", "rc", "messages", "") == 2
    assert store.count_failed("p") == 1
    assert store.reset("p", include_failed=True) == 1
    assert store.checkpoints("p") == []
    assert store.count_failed("p") == 0


def test_failed_keys_keep_their_exact_type(store):
    store.add_failed("p", "messages", "acc", BIG, {"id": BIG}, "boom")
    store.add_failed("p", "messages", "acc", str(BIG), {"id": str(BIG)}, "boom")
    store.add_failed("p", "messages", "acc", 42, {"id": 42}, "boom")
    items = store.due_failed("p", "messages", include_not_due=True)
    assert sorted((type(i.key).__name__, i.key) for i in items) == [
        ("int", 42),
        ("int", BIG),
        ("str", str(BIG)),
    ]
    assert {i.record["id"] for i in items} == {BIG, str(BIG), 42}
    with pytest.raises(TypeError):
        store.add_failed("p", "messages", "acc", 1.0, {}, "floats are not ids")
    assert store.resolve_failed("p", "messages", "acc", str(BIG)) is True
    assert store.resolve_failed("p", "messages", "acc", str(BIG)) is False
    assert sorted(i.key for i in store.failed("p")) == [42, BIG]


def test_failed_items_back_off_exponentially(store):
    first = store.add_failed("p", "recordings", "acc", "r1", {"id": "r1"}, "503")
    assert first.attempts == 1
    assert first.next_attempt_at - first.last_failed_at == pytest.approx(
        timedelta(seconds=60), abs=timedelta(seconds=1)
    )
    second = store.add_failed("p", "recordings", "acc", "r1", {"id": "r1"}, "503 again")
    third = store.add_failed("p", "recordings", "acc", "r1", {"id": "r1"}, "503 again")
    assert (second.attempts, third.attempts) == (2, 3)
    assert third.next_attempt_at - third.last_failed_at == pytest.approx(
        timedelta(seconds=240), abs=timedelta(seconds=1)
    )
    assert third.first_failed_at == first.first_failed_at or abs(
        third.first_failed_at - first.first_failed_at
    ) < timedelta(milliseconds=1)

    assert store.due_failed("p", "recordings") == []  # not due yet
    later = datetime.now(timezone.utc) + timedelta(minutes=5)
    [due] = store.due_failed("p", "recordings", now=later)
    assert (due.key, due.error, due.attempts) == ("r1", "503 again", 3)
    assert len(store.due_failed("p", "recordings", include_not_due=True)) == 1


def test_backoff_is_capped():
    backoff = Backoff(base=60, cap=24 * 3600)
    assert [backoff(n) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert backoff(20) == 24 * 3600
    assert backoff(10_000) == 24 * 3600


def test_runs_are_listed_newest_first(store):
    first = store.start_run("p", {"trigger": "cron"})
    second = store.start_run("p", {"trigger": "manual"})
    store.finish_run(first, "succeeded", {"records": 10})
    runs = store.runs("p")
    assert [r.run_id for r in runs] == [second, first]
    assert (runs[0].status, runs[0].summary, runs[0].finished_at) == ("running", None, None)
    assert (runs[1].status, runs[1].summary, runs[1].info) == (
        "succeeded",
        {"records": 10},
        {"trigger": "cron"},
    )
    assert len(store.runs("p", limit=1)) == 1


def test_purge_log(store):
    store.record_purge("p", "recordings", "acc", BIG, "deleted")
    store.record_purge("p", "recordings", "acc", "abc", "would-delete")
    assert [(r.key, r.action) for r in store.purges("p")] == [(BIG, "deleted"), ("abc", "would-delete")]
    assert store.purges("other") == []
