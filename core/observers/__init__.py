"""Built-in observers, written on the observer hooks like any third-party plugin would be.

- the run report (:mod:`.report`): JSON and a one-page HTML summary at the end of every run
- the notifier (:mod:`.notify`): webhook and e-mail when a run fails (or always)

This module is what the ``observers`` entry point registers, so the hooks are implemented here,
once each, and hand the events to both observers. See docs/observers.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..hookspecs import hookimpl
from ..interfaces import ObserverSpec
from ..records import ArchivedRecord, Record
from ..run import RunInfo, RunSummary
from .collector import Collectors

log = logging.getLogger("rcetl.observers")

_collectors = Collectors()


@hookimpl
def rcetl_observers() -> list[ObserverSpec]:
    from .notify import NotifyOptions
    from .report import ReportOptions

    return [
        ObserverSpec("report", ReportOptions, "JSON and one-page HTML run report (counts, bytes, failures, budget)"),
        ObserverSpec("notify", NotifyOptions, "webhook and e-mail when a run fails (or always)"),
    ]


@hookimpl
def rcetl_run_started(run: RunInfo) -> None:
    _collectors.start(run)
    from .notify import options_of

    try:
        options_of(run)  # bad notify options are reported now, not only when the run ends
    except Exception as exc:  # noqa: BLE001
        log.error("observers.notify options are invalid: %s", exc)


@hookimpl
def rcetl_items_archived(run: RunInfo, items: Sequence[ArchivedRecord]) -> None:
    _collectors.get(run).archived(items)


@hookimpl
def rcetl_item_failed(run: RunInfo, record: Record, error: str) -> None:
    _collectors.get(run).failed(record, error)


@hookimpl
def rcetl_budget_exhausted(run: RunInfo | None, budget: str, group: str, wait_seconds: float) -> None:
    targets = [_collectors.get(run)] if run is not None else _collectors.active()
    for collector in targets:
        collector.budget_wait(budget, group, wait_seconds)


@hookimpl
def rcetl_run_finished(run: RunInfo, summary: RunSummary) -> None:
    from .notify import notify
    from .report import write_report

    collector = _collectors.finish(run)
    files = None
    try:
        files = write_report(run, summary, collector)
        if files:
            log.info("run report: %s", files.html)
    except Exception:  # the notification must go out even when the report cannot be written
        log.exception("the run report could not be written")
    notify(run, summary, str(files.html) if files else None)
