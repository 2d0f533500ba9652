"""A run settles Python's cyclic collector once: what was imported is frozen out of its passes and
the young generation is collected only after 100,000 net container allocations. Records in flight
survive young passes (they are held by their batch): at the default 700, or the 10,000 of earlier
rcetl, the collector walked them twice each and took ~20 % of the run's CPU (bench/README.md)."""

from __future__ import annotations

import json
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
