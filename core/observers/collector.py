"""What the built-in observers learn while a run works: items, bytes, failures, budget waits, by time.

Observer hooks are called from worker threads, so one lock guards each run's collector. Memory stays
bounded whatever the run's size: items are counted into one-second buckets, and only the first
failures and budget waits are kept verbatim.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..records import ArchivedRecord, Record
from ..run import RunInfo
from ..secrets import redact

MAX_KEPT = 200  # failures and budget waits kept verbatim for the report


@dataclass
class RunCollector:
    run: RunInfo
    lock: threading.Lock = field(default_factory=threading.Lock)
    # second since start -> stream -> [items, bytes]
    seconds: dict[int, dict[str, list[int]]] = field(default_factory=lambda: defaultdict(dict))
    failures: list[dict[str, Any]] = field(default_factory=list)
    failures_total: int = 0
    waits: list[dict[str, Any]] = field(default_factory=list)
    waits_total: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # group -> seconds
    wait_seconds: dict[int, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))

    def _second(self) -> int:
        return max(int(time.time() - self.run.started_at), 0)

    def archived(self, items: Sequence[ArchivedRecord]) -> None:
        """Count a batch's archived items (and their stored bytes) into the current second."""
        counts: dict[str, list[int]] = {}
        for item in items:
            size = sum(b.size or 0 for b in item.blobs if b.status == "stored") if item.blobs else 0
            count = counts.get(item.record.stream)
            if count is None:
                counts[item.record.stream] = [1, size]
            else:
                count[0] += 1
                count[1] += size
        with self.lock:
            per = self.seconds[self._second()]
            for stream, (n, size) in counts.items():
                bucket = per.setdefault(stream, [0, 0])
                bucket[0] += n
                bucket[1] += size

    def failed(self, record: Record, error: str) -> None:
        with self.lock:
            self.failures_total += 1
            if len(self.failures) < MAX_KEPT:
                self.failures.append({"t": round(time.time() - self.run.started_at, 3), "stream": record.stream,
                                      "key": record.key, "account": record.account, "error": redact(error)})

    def budget_wait(self, budget: str, group: str, wait_seconds: float) -> None:
        with self.lock:
            second = self._second()
            self.waits_total[group] += wait_seconds
            per = self.wait_seconds[second]
            per[group] = per.get(group, 0.0) + wait_seconds
            if len(self.waits) < MAX_KEPT:
                self.waits.append({"t": round(time.time() - self.run.started_at, 3), "budget": budget,
                                   "group": group, "wait_seconds": round(wait_seconds, 3)})

    def timeline(self, duration: float, max_points: int = 60) -> list[dict[str, Any]]:
        """Items, bytes and budget waits per interval, ``max_points`` intervals at most."""
        with self.lock:
            seconds = {s: {k: list(v) for k, v in per.items()} for s, per in self.seconds.items()}
            waits = {s: dict(per) for s, per in self.wait_seconds.items()}
        span = max(int(duration) + 1, max(list(seconds) + list(waits) + [0]) + 1)
        step = max(1, -(-span // max_points))
        points = []
        for start in range(0, span, step):
            items: dict[str, int] = defaultdict(int)
            size = 0
            waited: dict[str, float] = defaultdict(float)
            for s in range(start, start + step):
                for stream, (n, b) in seconds.get(s, {}).items():
                    items[stream] += n
                    size += b
                for group, w in waits.get(s, {}).items():
                    waited[group] += w
            points.append({"t": start, "step": step, "items": dict(items), "bytes": size,
                           "budget_wait": {g: round(w, 3) for g, w in waited.items()}})
        return points


class Collectors:
    """Collectors of the runs in progress in this process, by run id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, RunCollector] = {}

    def start(self, run: RunInfo) -> RunCollector:
        with self._lock:
            return self._runs.setdefault(run.run_id, RunCollector(run))

    def get(self, run: RunInfo) -> RunCollector:
        with self._lock:
            found = self._runs.get(run.run_id)
        return found or self.start(run)  # a run_started this process missed (a Celery worker)

    def active(self) -> list[RunCollector]:
        with self._lock:
            return list(self._runs.values())

    def finish(self, run: RunInfo) -> RunCollector:
        with self._lock:
            return self._runs.pop(run.run_id, None) or RunCollector(run)
