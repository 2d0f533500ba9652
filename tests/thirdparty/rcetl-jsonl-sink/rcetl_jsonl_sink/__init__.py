"""``jsonl``: a record sink that appends each record as one JSON line to ``<folder>/<stream>.jsonl``.

Idempotent the simple way: a record already written (same stream, account and key) is not written
again, so a re-run after a crash adds nothing twice. Built only on rcetl's public API.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from pydantic import Field

import rcetl


class JsonlConfig(rcetl.PluginConfig):
    folder: str = Field(description="folder of the .jsonl files (relative to the pipeline file)")
    fsync: bool = Field(True, description="fsync each batch before reporting it stored")


class JsonlSink(rcetl.RecordSink):
    config_model = JsonlConfig
    description = "records as JSON lines, one file per stream"
    config: JsonlConfig

    def __init__(self, name: str, config: JsonlConfig, ctx: rcetl.RunContext) -> None:
        super().__init__(name, config, ctx)
        self.folder = ctx.resolve(config.folder)
        self._lock = threading.Lock()
        self._seen: dict[str, set[str]] = {}

    def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def _keys(self, stream: str) -> set[str]:
        if stream not in self._seen:
            seen = set()
            path = self.folder / f"{stream}.jsonl"
            if path.exists():
                for line in path.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        obj = json.loads(line)
                        seen.add(json.dumps([obj["account"], obj["key"]]))
            self._seen[stream] = seen
        return self._seen[stream]

    def write(self, records: Sequence[rcetl.ArchivedRecord]) -> None:
        with self._lock:
            by_stream: dict[str, list[str]] = {}
            for item in records:
                ident = json.dumps([item.record.account, item.key])
                if ident in self._keys(item.stream):
                    continue
                line = json.dumps({"stream": item.stream, "account": item.record.account, "key": item.key,
                                   "data": item.record.data, "archive": item.archive_json()})
                by_stream.setdefault(item.stream, []).append(line)
            for stream, lines in by_stream.items():
                path: Path = self.folder / f"{stream}.jsonl"
                with open(path, "a", encoding="utf-8") as fh:
                    fh.write("".join(f"{line}\n" for line in lines))
                    fh.flush()
                    if self.config.fsync:
                        os.fsync(fh.fileno())
                self._seen[stream].update(json.dumps([json.loads(x)["account"], json.loads(x)["key"]])
                                          for x in lines)


@rcetl.hookimpl
def rcetl_sinks() -> list[rcetl.SinkEntry]:
    return [rcetl.SinkEntry("jsonl", "rcetl_jsonl_sink:JsonlSink")]
