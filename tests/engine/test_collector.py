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


_MAPPED_AFTER_A_FREE = """
import ctypes, json, os, sys
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
from rcetl.engine import session
if sys.argv[1] == "settled":
    session._settle_malloc()
first = bytearray(1 << 20)   # mapped (above glibc's starting threshold of 128 KiB) ...
del first                    # ... and unmapped: glibc then raises its threshold to 1 MiB
before = libc.mallinfo2().hblks
second = bytearray(1 << 20)  # mapped again only if the threshold stayed where the run set it
print(json.dumps({"mapped_blocks": libc.mallinfo2().hblks - before}))
"""


def _mapped_blocks(mode: str, **env: str) -> int:
    out = subprocess.run([sys.executable, "-c", _MAPPED_AFTER_A_FREE, mode], capture_output=True, text=True,
                         check=True, env={k: v for k, v in {**os.environ, **env}.items() if v is not None})
    return json.loads(out.stdout)["mapped_blocks"]


def test_a_run_keeps_big_blocks_mapped_so_they_go_back_to_the_system_when_freed():
    """glibc's moving mmap threshold kept every freed 1 MiB download/hash chunk in the arena of the
    thread that made it (a few MB per download thread of peak RSS); a run fixes the threshold."""
    clean = {"MALLOC_MMAP_THRESHOLD_": None}
    assert _mapped_blocks("default", **clean) == 0  # glibc's own behaviour: carved from the heap
    assert _mapped_blocks("settled", **clean) >= 1


def test_a_threshold_the_user_set_is_kept():
    assert _mapped_blocks("settled", MALLOC_MMAP_THRESHOLD_="4194304") == 0
