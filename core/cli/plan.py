"""The dry-run plan of ``rcetl run --dry-run``: what a run would request, per API group, and how long
that takes at the budget.

Two levels, each labelled with its basis in the output:

* **estimate** (``--dry-run``): sends nothing. List requests come from each stream's ``plan()``
  (the least a source can say from its checkpoints and windows); downloads cannot be known before
  the listing is read, and are shown as "not counted".
* **counted** (``--dry-run --count``): reads the listings exactly as the run would (their list
  requests are sent and spend the budget, paced like a run), downloads nothing and writes nothing,
  and counts every binary the records point at -- recordings and attachments -- in the API group
  its download is counted in (the stream's ``planned_download(ref)``, which also leaves out binaries
  it knows are gone, e.g. recordings past retention; else the connection's ``planned_group``). Requests per group are then what the run sends,
  less retries.

Durations use the connection's limits per window *in real seconds*: the API's window divided by
the connection's ``time_scale`` (a sandbox at time scale 60 has a 1 s window).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine.opened import source_id
from ..interfaces import RunWindow, StreamPlan
from ..records import Checkpoint

if TYPE_CHECKING:
    from ..engine.opened import OpenedPipeline


@dataclass
class Counted:
    """What reading one stream's listing found."""

    records: int = 0
    downloads: Counter[str] = field(default_factory=Counter)  # API group -> binaries to download
    kinds: Counter[str] = field(default_factory=Counter)  # blob kind (recording, attachment) -> count
    gone: Counter[str] = field(default_factory=Counter)  # blob kind -> binaries the stream knows are gone


def count(opened: OpenedPipeline, window: RunWindow, names: set[str] | None = None
          ) -> tuple[dict[str, Counted], dict[str, dict[str, int]]]:
    """Read every task's listing (and derive its child streams' records) without downloading;
    return per stream what was found, and per credential the list requests sent per group."""
    found: dict[str, Counted] = {}

    def add(conn_name: str, stream: Any, record: Any) -> None:
        counted = found.setdefault(_label(opened, stream.name, conn_name), Counted())
        counted.records += 1
        conn = opened.connections[conn_name]
        for ref in record.blobs:
            # The stream knows best (it skips binaries it knows are gone); else the connection
            # names the group of the download's URL.
            if hasattr(stream, "planned_download"):
                group = stream.planned_download(ref)
            else:
                group = conn.planned_group("GET", ref.url) if hasattr(conn, "planned_group") else "downloads"
            if group is None:
                counted.gone[ref.kind] += 1
                continue
            counted.downloads[group] += 1
            counted.kinds[ref.kind] += 1

    for task in opened.tasks(names):
        stream = opened.streams[(task.connection, task.source, task.stream)]
        checkpoint = None if window.full_refresh else opened.state.get_checkpoint(
            opened.pipeline.name, source_id(task.source, task.connection), task.stream, task.partition)
        children = opened.children(task.connection, task.stream, names)
        found.setdefault(_label(opened, task.stream, task.connection), Counted())
        for item in stream.read(task.partition, checkpoint, window):
            if isinstance(item, Checkpoint):
                continue
            add(task.connection, stream, item)
            for _, child in children:
                for derived in child.derive(item):
                    add(task.connection, child, derived)
    sent = {cred: {g: s.sent for g, s in budget.snapshot().items() if s.sent}
            for cred, budget in (opened.budgets.created.items() if opened.budgets else [])}
    return found, sent


def _label(opened: OpenedPipeline, stream: str, conn: str) -> str:
    return f"{stream}@{conn}" if len(opened.connections) > 1 else stream


def counted_plans(plans: list[StreamPlan], found: dict[str, Counted],
                  sent: dict[str, dict[str, int]]) -> list[StreamPlan]:
    """The plans with the listing's real list requests and the counted downloads."""
    total_sent: Counter[str] = Counter()
    for groups in sent.values():
        total_sent.update(groups)
    out = []
    for plan in plans:
        c = found.get(plan.stream, Counted())
        requests = Counter(c.downloads)
        kinds = ", ".join(f"{n} {k}(s)" for k, n in sorted(c.kinds.items())) or "no binaries"
        gone = "".join(f", {n} {k}(s) known gone (no request)" for k, n in sorted(c.gone.items()))
        out.append(StreamPlan(stream=plan.stream,
                              description=f"counted: {c.records} record(s), {kinds} to download{gone}",
                              requests=dict(requests), items=c.records, warnings=list(plan.warnings)))
    listing = StreamPlan(stream="(list requests)", description="counted: sent while reading the listings above",
                         requests=dict(total_sent))
    return [*out, listing]


def totals(plans: list[StreamPlan]) -> dict[str, int]:
    """Requests per API group over every plan (group names as the sources spell them)."""
    out: Counter[str] = Counter()
    for plan in plans:
        out.update(plan.requests)
    return dict(out)


def duration_lines(plans: list[StreamPlan], connections: dict[str, Any], *, counted: bool) -> list[str]:
    """How long the planned requests take at each connection's budget, in real seconds: groups
    are spent in parallel, so the slowest group sets the pace."""
    from datetime import timedelta

    totals: Counter[str] = Counter()
    for plan in plans:
        for group, n in plan.requests.items():
            totals[group.lower()] += n
    lines = []
    for name, conn in connections.items():
        limits: dict[str, Any] = getattr(conn, "planned_limits", dict)()
        if not limits:
            continue
        scale = float(getattr(conn, "time_scale", 1.0) or 1.0)
        by_group = {g.lower(): (g, limit, window / scale) for g, (limit, window) in limits.items()}
        paced = []
        for group, n in sorted(totals.items()):
            if group in by_group and n:
                spelled, limit, window = by_group[group]
                # the first `limit` go at once; each further `limit` waits one more window
                paced.append((math.floor((n - 1) / max(limit, 1)) * window, spelled, n, limit, window))
        if not paced:
            continue
        seconds, group, n, limit, window = max(paced)
        basis = "counted listing and downloads" if counted else \
            "list requests only: downloads are not counted (use --dry-run --count to count them)"
        scale_note = f" (time scale {scale:g})" if scale != 1 else ""
        lines.append(f"estimate ({name}; {basis}): {', '.join(f'{g} {n}' for _, g, n, _, _ in paced)} "
                     f"requests; at {limit} {group} requests per {window:g}s{scale_note} this takes about "
                     f"{timedelta(seconds=round(seconds))}")
    return lines
