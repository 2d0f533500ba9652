"""Both coordinators: a lock admits one process at a time; values round-trip as JSON."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from pathlib import Path

import pytest

from rcetl.coordination import FileCoordinator
from tests.services import service_url

REDIS_URL = os.environ.get("RCETL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_or_skip() -> None:
    # tests/services.py: skip on a laptop without Redis, fail on CI; a container's URL is used by
    # the child processes too (fork inherits the global, spawn the environment).
    global REDIS_URL
    REDIS_URL = service_url("REDIS")


def _make(kind: str, where: str, **options):
    if kind == "file":
        return FileCoordinator(Path(where))
    from rcetl.coordination_redis import RedisCoordinator

    return RedisCoordinator(REDIS_URL, prefix=where, **options)


@pytest.fixture(params=["file", "redis"])
def coordinator_spec(request, tmp_path):
    """(kind, where): enough for a child process to open the same coordinator."""
    if request.param == "file":
        yield "file", str(tmp_path / "coord")
        return
    _redis_or_skip()
    prefix = f"rcetl-test-{uuid.uuid4().hex}"
    yield "redis", prefix
    _make("redis", prefix).clear()


def _contend(kind: str, where: str, journal: str, rounds: int) -> None:
    coordinator = _make(kind, where)
    for _ in range(rounds):
        with coordinator.lock("token-refresh", timeout=30):
            # Open, write, sleep, write: if two holders overlapped, their lines would interleave.
            with open(journal, "a") as fh:
                fh.write(f"enter {os.getpid()}\n")
                fh.flush()
                time.sleep(0.01)
                fh.write(f"leave {os.getpid()}\n")


def test_two_processes_take_turns_in_the_critical_section(coordinator_spec, tmp_path):
    kind, where = coordinator_spec
    journal = tmp_path / "journal.txt"
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_contend, args=(kind, where, str(journal), 8)) for _ in range(2)]
    for proc in workers:
        proc.start()
    for proc in workers:
        proc.join(60)
    assert [proc.exitcode for proc in workers] == [0, 0]
    lines = journal.read_text().splitlines()
    assert len(lines) == 32
    for enter, leave in zip(lines[::2], lines[1::2], strict=True):
        assert enter.startswith("enter ") and leave == enter.replace("enter", "leave")
    assert len({line.split()[1] for line in lines}) == 2


def test_values_round_trip(coordinator_spec):
    coordinator = _make(*coordinator_spec)
    assert coordinator.get("token") is None
    coordinator.put("token", {"access_token": "abc", "expires_at": 2**63 - 1})
    assert coordinator.get("token") == {"access_token": "abc", "expires_at": 2**63 - 1}


def test_a_held_redis_lock_times_out_the_next_caller_and_outlives_its_lease():
    _redis_or_skip()
    prefix = f"rcetl-test-{uuid.uuid4().hex}"
    holder = _make("redis", prefix, lease=0.3)
    other = _make("redis", prefix, lease=0.3)
    try:
        with holder.lock("refresh"):
            time.sleep(0.5)  # longer than the lease: the renewer keeps it ours
            with pytest.raises(TimeoutError):
                with other.lock("refresh", timeout=0.2):
                    pass
        with other.lock("refresh", timeout=1):
            pass
    finally:
        holder.clear()


def _put_in_child(folder: str, value: dict) -> None:
    FileCoordinator(Path(folder)).put("token", value)


def test_a_file_value_replaced_by_another_process_is_read_again(tmp_path):
    """get() keeps the last parsed value while the file is unchanged; a value another process
    stored meanwhile (same size, within the same clock tick) is read, never the kept one."""
    folder = str(tmp_path / "coord")
    reader = FileCoordinator(Path(folder))
    reader.put("token", {"fingerprint": "aaaa"})
    assert reader.get("token") == {"fingerprint": "aaaa"}
    for fingerprint in ("bbbb", "cccc", "dddd"):
        child = multiprocessing.get_context("spawn").Process(
            target=_put_in_child, args=(folder, {"fingerprint": fingerprint})
        )
        child.start()
        child.join(30)
        assert reader.get("token") == {"fingerprint": fingerprint}
    # In this process too, through another coordinator object on the same folder.
    FileCoordinator(Path(folder)).put("token", {"fingerprint": "eeee"})
    assert reader.get("token") == {"fingerprint": "eeee"}
    found = reader.get("token")
    assert found is not None
    found["fingerprint"] = "changed by the caller"
    assert reader.get("token") == {"fingerprint": "eeee"}
