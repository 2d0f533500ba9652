"""The pipeline file's top level, and the resolved pipeline the engine runs.

Plugin options are validated by each plugin's own config model (see :mod:`.validate`); this
module knows only the shape every pipeline shares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..interfaces import ConnectionSpec, PluginConfig, Sink, SinkEntry, SourceSpec

if TYPE_CHECKING:
    from ..context import RunContext

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExecutorOptions(_Strict):
    """How the work is run: threads in this process, or tasks on Celery workers."""

    type: Literal["local", "celery"] = Field("local", description="local threads, or Celery workers")
    workers: int = Field(4, ge=1, le=256, description="streams/partitions worked on at once")
    downloads: int = Field(8, ge=1, le=256, description="binaries downloaded and uploaded at once; unset: "
                           "from the rate budget, or adapted to latency where none binds (docs/pipeline-format.md)")
    # 1,000: one call-log page (perPage 1000) is one batch, one transaction; 500 made two of each
    # page, and a transaction's fixed costs (commit, fsync, round trips) were 10 % of a backfill
    # into SQLite (50k calls: 3.9 -> 3.3-3.65 s). Read-ahead holds one batch, the writer two more.
    # Records with binaries: at most 32 per download slot in a batch (rcetl.engine.session).
    batch_size: int = Field(1000, ge=1, le=50_000, description="records written to sinks per transaction "
                            "(records with binaries: at most 32 per download slot)")
    broker: str | None = Field(None, description="Celery broker URL (amqp://... or redis://...)")
    backend: str | None = Field(None, description="Celery result backend URL (redis://...)")
    queue: str = Field("rcetl", description="Celery queue name")


class BudgetOptions(_Strict):
    """Where request budgets live: this process, or Redis (shared by processes and workers)."""

    backend: Literal["memory", "redis"] = "memory"
    url: str | None = Field(None, description="redis://host:port/db when backend is redis")


class PurgeOptions(_Strict):
    """``rcetl purge`` deletes from the source only what verification proved archived everywhere."""

    streams: list[str] = Field(description="streams whose items may be deleted at the source")
    min_age_days: int = Field(30, ge=0, description="never delete items younger than this")
    proof_max_age_days: float = Field(7, gt=0, description="delete only items `rcetl verify` proved (stored "
                                      "bytes read back, or re-downloaded with --deep) within this many days")


class PipelineModel(_Strict):
    pipeline: str = Field(pattern=NAME_PATTERN, description="the pipeline's name: keys its checkpoints")
    connections: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="named API connections: {name: {plugin: ringcentral, ...}}"
    )
    state: str | None = Field(None, description="checkpoint store: a SQLAlchemy URL, or a path meaning a SQLite file (default: .rcetl/PIPELINE/state.db beside the pipeline file)")
    spool_dir: str | None = Field(None, description="folder for binaries in flight (default: beside the state)")
    executor: ExecutorOptions = Field(default_factory=ExecutorOptions)
    budgets: BudgetOptions = Field(default_factory=BudgetOptions)
    sources: dict[str, dict[str, Any] | None] = Field(description="source plugins and their options")
    sinks: dict[str, dict[str, Any]] = Field(description="named sinks: {name: {plugin: ..., streams: [...], ...}}")
    observers: dict[str, dict[str, Any] | None] = Field(
        default_factory=dict, description="options for observer plugins (report, notify)"
    )
    purge: PurgeOptions | None = Field(None, description="opt in to `rcetl purge` (off unless set)")


@dataclass
class ConnectionConf:
    name: str
    spec: ConnectionSpec
    config: PluginConfig


@dataclass
class SourceConf:
    name: str
    spec: SourceSpec
    config: PluginConfig
    connections: list[str]


@dataclass
class SinkConf:
    """One configured sink: its name in the file, its plugin and the class serving its options."""

    name: str
    spec: SinkEntry  # how the plugin registered (``spec.name`` is the plugin's name)
    sink_class: type[Sink]  # ``spec.load().configured(config)``
    config: PluginConfig
    streams: set[str]

    @property
    def kinds(self) -> frozenset[str]:
        """What this sink stores, from its class: ``records``, ``blobs`` or both."""
        return self.sink_class.kinds()

    def build(self, ctx: RunContext) -> Sink:
        """The sink object (not opened yet): the one place a configured sink is instantiated."""
        return self.sink_class(self.name, self.config, ctx)


@dataclass
class Pipeline:
    """A validated pipeline, ready to run. Built only by :func:`rcetl.config.load_pipeline`."""

    name: str
    file: Path
    base_dir: Path
    state_url: str
    spool_dir: Path
    executor: ExecutorOptions
    budgets: BudgetOptions
    connections: list[ConnectionConf]
    sources: list[SourceConf]
    sinks: list[SinkConf]
    observers: dict[str, dict[str, Any]]
    secrets: set[str] = field(default_factory=set)
    purge: PurgeOptions | None = None

    def stream_source(self) -> dict[str, SourceConf]:
        return {stream: src for src in self.sources for stream in src.spec.streams}

    def record_sinks_for(self, stream: str) -> list[SinkConf]:
        return [s for s in self.sinks if stream in s.streams and "records" in s.kinds]

    def blob_sinks_for(self, stream: str) -> list[SinkConf]:
        return [s for s in self.sinks if stream in s.streams and "blobs" in s.kinds]
