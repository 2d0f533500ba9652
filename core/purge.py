"""Delete from the source only what verification proved archived in every sink.

Off unless the pipeline has a ``purge:`` block; a dry run unless ``--yes``. Every deletion is
recorded in the state store's purge log with what was done and when.

An item old enough to purge is deleted only if nothing speaks against it, and every refusal is
listed with its reason: a problem ``verify`` found with it (stored content that fails the content
check, a binary shared with another item, a missing or corrupt copy...), or no recent proof. A
proof is what ``verify`` records when it has read the item's stored bytes back from every sink
(hashed and content-checked) or re-downloaded and compared them (``--deep``), in this run or within
``purge.proof_max_age_days``, for the binaries the archive names now.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .engine.opened import OpenedPipeline
from .errors import ConfigError, RcetlError
from .records import Record
from .secrets import redact
from .verify import VerifyReport

log = logging.getLogger("rcetl.purge")

#: Findings whose reason reads better in words than as a kind.
_REASONS = {
    "content": "its stored content fails the content check",
    "shared": "it shares a stored binary with another item",
    "deep-mismatch": "a re-download does not match what is stored",
    "not-archived": "a binary it names is not archived",
}


@dataclass
class PurgeAction:
    stream: str
    account: str
    key: object
    action: str  # "would delete" | "deleted" | "purged" | "refused: ..." | "skipped: ..." | "failed: ..."

    @property
    def refused(self) -> bool:
        return self.action.startswith("refused")

    @property
    def kept(self) -> bool:
        """Left at the source by decision: refused, or skipped as already gone."""
        return self.action.startswith(("refused", "skipped"))

    def line(self) -> str:
        verdict, _, reason = self.action.partition(": ")
        if self.kept:
            return f"{verdict}: {self.stream} {self.key!r}: {reason}"
        return f"{self.action}: {self.stream} {self.key!r}"


def require_enabled(pipeline) -> None:  # noqa: ANN001 - a Pipeline
    """Refuse before anything is opened or requested when the pipeline has not opted in."""
    if pipeline.purge is None:
        raise ConfigError(f"{pipeline.file}: purge is not enabled for this pipeline",
                          hint="add `purge: {streams: [recording], min_age_days: 30}` to opt in")


def _old_enough(record: Record, cutoff: datetime) -> bool:
    when = record.occurred_at
    if when is None:
        return False  # an item of unknown age is never old enough to delete
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when <= cutoff


def purge_decisions(opened: OpenedPipeline, report: VerifyReport, now: datetime | None = None
                    ) -> list[tuple[str, Record, list[str]]]:
    """Every item of the purge streams old enough to go, with the reasons (if any) it must stay."""
    require_enabled(opened.pipeline)
    options = opened.pipeline.purge
    assert options is not None  # require_enabled raised otherwise
    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(days=options.min_age_days)
    proof_cutoff = now - timedelta(days=options.proof_max_age_days)
    proofs = opened.state.proofs(opened.pipeline.name)
    out = []
    for item, record in sorted(report.source.items(), key=lambda kv: kv[0]):
        stream = item[0]
        if stream not in options.streams or not _old_enough(record, cutoff):
            continue
        reasons = []
        for f in report.findings_for(item):
            text = _REASONS.get(f.kind, f.kind)
            reasons.append(f"{text}{f' in {f.sink}' if f.sink else ''}: {f.detail}")
        if not reasons:
            proof = proofs.get((stream, record.account, record.key))
            if proof is None:
                reasons.append("not proven: no run of `rcetl verify` has read its stored bytes back "
                               "(run `rcetl verify --rehash`, or `--deep N`)")
            elif proof.digest != report.digests.get(item):
                reasons.append("not proven: the archive changed since `rcetl verify` proved it")
            elif proof.at < proof_cutoff:
                reasons.append(f"not proven recently: last proven {proof.at:%Y-%m-%d %H:%M} UTC, more than "
                               f"{options.proof_max_age_days:g} day(s) ago (purge.proof_max_age_days); "
                               "run `rcetl verify --rehash`")
        out.append((stream, record, reasons))
    return out


def _item(record: Record) -> tuple[str, str]:
    return (record.account, repr(record.key))


def purge(opened: OpenedPipeline, report: VerifyReport, *, act: bool) -> list[PurgeAction]:
    actions = []
    streams = {name: s for (_, _, name), s in opened.streams.items()}
    for stream_name, record, reasons in purge_decisions(opened, report):
        if (stream_name, *_item(record)) in report.gone and not reasons:
            # Its binaries were gone at the source when archived: a DELETE would free nothing.
            actions.append(PurgeAction(stream_name, record.account, record.key, "skipped: already gone at the source"))
            continue
        if reasons:
            actions.append(PurgeAction(stream_name, record.account, record.key, "refused: " + "; ".join(reasons)))
            continue
        if not act:
            actions.append(PurgeAction(stream_name, record.account, record.key, "would delete"))
            continue
        try:
            what = streams[stream_name].delete(record)
        except (RcetlError, NotImplementedError) as exc:
            what = f"failed: {redact(str(exc))}"
        opened.state.record_purge(opened.pipeline.name, stream_name, record.account, record.key, what)
        actions.append(PurgeAction(stream_name, record.account, record.key, what))
    return actions
