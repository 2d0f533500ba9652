"""The default SQLite store: private file, sharing between processes, migrations, safe errors."""

from __future__ import annotations

import multiprocessing
import stat

import pytest
import sqlalchemy as sa

from rcetl.state import MIGRATIONS, Migration, StateStore, StateStoreError, add_column

from .conftest import in_threads


def test_the_file_and_its_folder_are_private(tmp_path):
    store = StateStore(f"sqlite:///{tmp_path}/deep/state/state.db")
    store.put_checkpoint("p", "rc", "call_log", "", 1)
    assert stat.S_IMODE((tmp_path / "deep" / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "deep" / "state" / "state.db").stat().st_mode) == 0o600


def _write_checkpoints(url: str, worker: int, count: int) -> None:
    store = StateStore(url)
    for i in range(count):
        store.put_checkpoint("p", "rc", "call_log", f"w{worker}", i)
        store.add_failed("p", "call_log", "acc", f"w{worker}-{i % 3}", {"i": i}, "boom")
    store.close()


def test_two_processes_share_one_file(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_write_checkpoints, args=(url, w, 40)) for w in range(2)]
    for proc in workers:
        proc.start()
    for proc in workers:
        proc.join(60)
    assert [proc.exitcode for proc in workers] == [0, 0]
    store = StateStore(url)
    assert {r.partition: r.value for r in store.checkpoints("p")} == {"w0": 39, "w1": 39}
    items = store.failed("p")
    assert len(items) == 6 and {i.attempts for i in items} == {14, 13}


def test_threads_share_one_store(tmp_path):
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                store.put_checkpoint("p", "rc", "s", str(n), i)
                store.add_failed("p", "s", "acc", 1, {}, "same item from every thread")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    in_threads(work, 4, timeout=60)
    assert errors == []
    assert [i.attempts for i in store.failed("p")] == [80]


def test_a_later_version_adds_a_column_in_place(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    old = StateStore(url)
    old.put_checkpoint("p", "rc", "call_log", "", {"kept": True})
    old.close()

    def add_note(conn, tables):
        add_column(conn, tables.checkpoints, sa.Column("note", sa.String(100), nullable=True))

    later = len(MIGRATIONS) + 1  # the release after this one
    new = StateStore(url, migrations=[*MIGRATIONS, Migration(later, "checkpoint notes", add_note)])
    assert new.get_checkpoint("p", "rc", "call_log", "") == {"kept": True}
    assert new.schema_version == later
    columns = {c["name"] for c in sa.inspect(sa.create_engine(url)).get_columns(new.tables.checkpoints.name)}
    assert "note" in columns
    # Opening it again applies nothing twice.
    again = StateStore(url, migrations=[*MIGRATIONS, Migration(later, "checkpoint notes", add_note)])
    assert again.get_checkpoint("p", "rc", "call_log", "") == {"kept": True}
    assert again.schema_version == later


def test_errors_never_show_the_password():
    store = StateStore("postgresql+psycopg://archiver:s3cr3t-pw@127.0.0.1:1/nowhere?connect_timeout=2")
    assert "s3cr3t-pw" not in repr(store) and "***" in store.url
    with pytest.raises(StateStoreError) as info:
        store.get_checkpoint("p", "rc", "call_log", "")
    assert "s3cr3t-pw" not in str(info.value)
    assert "127.0.0.1" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_an_in_memory_store_serves_many_threads():
    store = StateStore("sqlite://")

    def work(n: int) -> None:
        for i in range(10):
            store.put_checkpoint("p", "rc", "s", str(n), i)

    in_threads(work, 4, timeout=30)
    assert [r.value for r in store.checkpoints("p")] == [9, 9, 9, 9]


def test_a_bad_url_is_reported_as_such():
    with pytest.raises(StateStoreError, match="not a database URL"):
        StateStore("not a url at all")
