"""Delete from the source only what verification proved archived in every sink.

Off unless the pipeline has a ``purge:`` block; a dry run unless ``--yes``. Every deletion is
recorded in the state store's purge log with what was done and when.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .engine.runtime import Engine
from .errors import ConfigError, RcetlError
from .records import Record
from .secrets import redact
from .verify import VerifyReport

log = logging.getLogger("rcetl.purge")


@dataclass
class PurgeAction:
    stream: str
    account: str
    key: object
    action: str  # "would delete" | "deleted" | "purged" | "failed: ..."


def require_enabled(pipeline) -> None:  # noqa: ANN001 - a Pipeline
    """Refuse before anything is opened or requested when the pipeline has not opted in."""
    if pipeline.purge is None:
        raise ConfigError(f"{pipeline.file}: purge is not enabled for this pipeline",
                          hint="add `purge: {streams: [recording], min_age_days: 30}` to opt in")


def purge_candidates(engine: Engine, report: VerifyReport) -> list[tuple[str, Record]]:
    require_enabled(engine.pipeline)
    options = engine.pipeline.purge
    cutoff = datetime.now(timezone.utc) - timedelta(days=options.min_age_days)
    out = []
    for (stream, _account, _key), record in sorted(report.verified.items(), key=lambda kv: kv[0]):
        if stream not in options.streams:
            continue
        when = record.occurred_at
        if when is None:
            continue  # an item of unknown age is never old enough to delete
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        if when > cutoff:
            continue
        out.append((stream, record))
    return out


def purge(engine: Engine, report: VerifyReport, *, act: bool) -> list[PurgeAction]:
    actions = []
    streams = {name: s for (_, _, name), s in engine.streams.items()}
    for stream_name, record in purge_candidates(engine, report):
        if not act:
            actions.append(PurgeAction(stream_name, record.account, record.key, "would delete"))
            continue
        try:
            what = streams[stream_name].delete(record)
        except (RcetlError, NotImplementedError) as exc:
            what = f"failed: {redact(str(exc))}"
        engine.state.record_purge(engine.pipeline.name, stream_name, record.account, record.key, what)
        actions.append(PurgeAction(stream_name, record.account, record.key, what))
    return actions
