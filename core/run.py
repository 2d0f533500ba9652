"""What a run is and what it did: shared by the engine, the CLI, observers and executors."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RunInfo:
    """Handed to observer hooks: which run this is and the pipeline's observer options."""

    run_id: str
    pipeline: str
    pipeline_file: str
    started_at: float
    executor: str = "local"
    dry_run: bool = False
    observers: dict[str, dict[str, Any]] = field(default_factory=dict)
    output_dir: str = ""  # where run reports go (beside the state by default)


@dataclass
class StreamStats:
    records: int = 0
    files: int = 0
    bytes: int = 0
    skipped_files: int = 0  # already present in a sink with the same checksum
    gone: int = 0  # binaries the source no longer has (retention)
    failed: int = 0
    retried: int = 0  # failed items from earlier runs archived now
    reused: int = 0  # binaries not downloaded again: every sink holds them with the recorded checksum


@dataclass
class SinkStats:
    records: int = 0
    files: int = 0
    bytes: int = 0


class RunStats:
    """Thread-safe counters updated while a run works; read by progress displays."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.streams: dict[str, StreamStats] = defaultdict(StreamStats)
        self.sinks: dict[str, SinkStats] = defaultdict(SinkStats)
        self.errors: list[str] = []
        # Records a record sink reported new or changed; None once any sink could not tell.
        self.changed: int | None = 0

    def add_changed(self, count: int | None) -> None:
        with self._lock:
            self.changed = None if count is None or self.changed is None else self.changed + count

    def add(self, stream: str, **counts: int) -> None:
        with self._lock:
            s = self.streams[stream]
            for k, v in counts.items():
                setattr(s, k, getattr(s, k) + v)

    def add_sink(self, sink: str, **counts: int) -> None:
        with self._lock:
            s = self.sinks[sink]
            for k, v in counts.items():
                setattr(s, k, getattr(s, k) + v)

    def error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)

    def snapshot(self) -> tuple[dict[str, StreamStats], dict[str, SinkStats]]:
        with self._lock:
            return (
                {k: StreamStats(**asdict(v)) for k, v in self.streams.items()},
                {k: SinkStats(**asdict(v)) for k, v in self.sinks.items()},
            )


@dataclass
class RunSummary:
    """The run's result: printed by the CLI, stored in run history, given to observers."""

    run_id: str
    pipeline: str
    status: str  # "ok" | "failed" | "partial" | "interrupted"
    started_at: float
    finished_at: float
    streams: dict[str, StreamStats]
    sinks: dict[str, SinkStats]
    requests: dict[str, dict[str, int]]  # credential (a non-secret id) -> API group -> requests sent
    throttled: dict[str, int]  # credential -> 429 responses
    failed_items: int  # items in the failed-item queue after the run
    errors: list[str]
    changed_records: int | None = None  # new or changed per the sinks (None: a sink could not tell)

    @property
    def duration(self) -> float:
        return self.finished_at - self.started_at

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["duration"] = round(self.duration, 3)
        return data
