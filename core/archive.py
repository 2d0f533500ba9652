"""A pipeline's archive opened for reading: its sinks and its state, without a source or a request.

Readers of an archive (``rcetl browse``, scripts) need the sinks a pipeline file names, opened the
way a run opens them, but nothing a run needs to talk to RingCentral: no connection is made, no
embedded sandbox started, no spool folder or budget window written.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .interfaces import BlobSink, RecordSink

if TYPE_CHECKING:
    from .config.model import Pipeline
    from .state import StateStore


@dataclass
class OpenedArchive:
    """The sinks and state of one pipeline, open for reading (see :func:`open_archive`)."""

    pipeline: Pipeline
    record_sinks: dict[str, RecordSink] = field(default_factory=dict)
    blob_sinks: dict[str, BlobSink] = field(default_factory=dict)
    #: None when no run has written a state database yet.
    state: StateStore | None = None

    @property
    def name(self) -> str:
        return self.pipeline.name


@contextlib.contextmanager
def open_archive(pipeline_file: str | Path) -> Iterator[OpenedArchive]:
    """Validate ``pipeline_file`` (raising :class:`rcetl.ConfigError` with every problem) and open its
    sinks and state store for reading; everything is closed when the block ends."""
    from .config import load_pipeline
    from .context import RunContext
    from .engine.opened import MemoryCoordinator, make_budget_provider, state_exists
    from .registry import get_plugin_manager

    pipeline = load_pipeline(Path(pipeline_file), pm=get_plugin_manager())
    with contextlib.ExitStack() as stack:
        spool = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rcetl-read-")))
        budgets = make_budget_provider(pipeline, persist=False)  # nothing is sent: never used
        stack.callback(getattr(budgets, "close", lambda: None))
        ctx = RunContext(pipeline=pipeline.name, budgets=budgets, coordinator=MemoryCoordinator(),
                         spool_dir=spool, base_dir=pipeline.base_dir,
                         logger=logging.getLogger(f"rcetl.read.{pipeline.name}"))
        opened = OpenedArchive(pipeline)
        if state_exists(pipeline.state_url):
            from .state import StateStore

            opened.state = StateStore(pipeline.state_url)
            stack.callback(opened.state.close)
        for conf in pipeline.sinks:
            sink: Any = conf.build(ctx)
            sink.open()
            stack.callback(sink.close)
            if isinstance(sink, RecordSink):
                opened.record_sinks[conf.name] = sink
            if isinstance(sink, BlobSink):
                opened.blob_sinks[conf.name] = sink
        yield opened
