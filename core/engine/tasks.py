"""Units of work: one (connection, source, stream, partition) each, runnable by any executor."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class StreamTask:
    connection: str
    source: str
    stream: str
    partition: str = ""

    @property
    def label(self) -> str:
        part = f"[{self.partition}]" if self.partition else ""
        return f"{self.stream}{part}@{self.connection}"

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StreamTask:
        return cls(**{k: str(data.get(k, "")) for k in ("connection", "source", "stream", "partition")})


@dataclass
class TaskResult:
    task: StreamTask
    status: str  # "ok" | "failed" | "stopped"
    error: str | None = None
    records: int = 0
    failed: int = 0
    worker: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["task"] = self.task.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskResult:
        data = dict(data)
        data["task"] = StreamTask.from_json(data["task"])
        return cls(**data)
