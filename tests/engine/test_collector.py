"""A run settles Python's cyclic collector once: what was imported is frozen out of its passes and
the young generation is collected only after 100,000 net container allocations. Records in flight
survive young passes (they are held by their batch): at the default 700, or the 10,000 of earlier
rcetl, the collector walked them twice each and took ~20 % of the run's CPU (bench/README.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _settled(before: str) -> dict:
    code = (
        "import gc, json\n" + before +
        "from rcetl.engine import session\n"
        "session._settle_gc(); session._settle_gc()\n"
        "print(json.dumps({'threshold': gc.get_threshold(), 'frozen': gc.get_freeze_count(),"
        " 'enabled': gc.isenabled()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_a_run_freezes_what_was_imported_and_collects_the_young_generation_rarely():
    settled = _settled("")
    assert settled["threshold"][0] >= 100_000, settled
    assert settled["frozen"] > 10_000, settled  # rcetl's and its libraries' objects
    assert settled["enabled"]


def test_a_collector_someone_turned_off_stays_off_and_a_higher_threshold_is_kept():
    assert _settled("gc.disable(); gc.set_threshold(0)\n")["threshold"][0] == 0
    assert _settled("gc.set_threshold(500_000, 10, 10)\n")["threshold"][0] == 500_000


_FREED_IN_A_THREAD = """
import json, sys, threading
from rcetl.engine import session
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
kept = []
def download_thread():  # a thread's own arena: 64 MB of 64 KiB blocks, all freed but the last
    blocks = [bytearray(64 << 10) for _ in range(1024)]
    kept.append(blocks[-1])
    del blocks
t = threading.Thread(target=download_thread)
t.start(); t.join()
before = rss_mb()
if sys.argv[1] == "trimmed":
    session._trim_malloc()
print(json.dumps({"returned_mb": before - rss_mb()}))
"""


def _returned_mb(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", _FREED_IN_A_THREAD, mode], capture_output=True, text=True,
                         check=True, env={k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")})
    return json.loads(out.stdout)["returned_mb"]


def test_memory_a_download_thread_freed_goes_back_to_the_system_after_a_batch():
    """What a thread frees stays in its malloc arena (glibc): the download threads' buffers, a few
    MB each by a run's end. A run trims the arenas after each batch with binaries (the batch test
    is tests/core/test_batch_overlap.py); here the trim itself: the freed 64 MB go back."""
    assert _returned_mb("kept") < 4  # glibc keeps what the thread freed
    assert _returned_mb("trimmed") > 48
