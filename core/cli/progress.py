"""Progress of a long run: a live Rich view on a terminal, periodic log lines elsewhere."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..engine.session import RunSession
    from ..run import RunStats, RunSummary

log = logging.getLogger("rcetl.progress")


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


#: Waits at least this long are shown with their reason (shorter ones are the budget's normal pace).
LONG_WAIT = 3.0


def wait_line(credential: str, st: Any) -> str:
    """``waiting 12s for Heavy (window full 10/10): 3 request(s) in line [budget 1a2b3c4d5e]``."""
    return (f"waiting {st.waiting_for:.0f}s for {st.group} ({st.wait_reason} {st.used}/{st.limit}"
            + (f", {st.penalty_remaining:.0f}s left" if st.penalty_remaining > 0 else "")
            + f"): {st.waiting} request(s) in line [budget {credential[:10]}]")


class RunProgress:
    """Shows per-stream records, files, bytes and the budget of each credential while a run works."""

    def __init__(self, stats: RunStats | None = None, *, interval: float = 15.0, live: bool | None = None) -> None:
        self.stats = stats  # counters to show until a session is attached (then the session's)
        self.session: RunSession | None = None
        self.interval = interval
        self.live = sys.stderr.isatty() if live is None else live
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()

    def attach(self, session: RunSession) -> None:
        """Show ``session``'s counters, and the budgets as it sees them (its own requests and its workers')."""
        self.session = session

    def _stream_counts(self) -> dict[str, Any]:
        stats = self.session.stats if self.session is not None else self.stats
        return stats.snapshot()[0] if stats is not None else {}

    def __enter__(self) -> RunProgress:
        target = self._live_loop if self.live else self._log_loop
        self._thread = threading.Thread(target=target, name="rcetl-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)

    def _snapshots(self) -> list[tuple[str, dict[str, Any]]]:
        return self.session.budget_snapshots() if self.session else []

    def _budget_lines(self) -> list[str]:
        lines = []
        for cred, snap in self._snapshots():
            parts = []
            for group, st in sorted(snap.items()):
                pen = f" penalty {st.penalty_remaining:.0f}s" if st.penalty_remaining > 0 else ""
                parts.append(f"{group} {st.used}/{st.limit} (sent {st.sent}){pen}")
            lines.append(f"budget {cred[:10]}: " + ", ".join(parts))
            lines += [wait_line(cred, st) for st in snap.values() if st.waiting_for >= LONG_WAIT]
        return lines

    def _announce_long_waits(self, announced: set[tuple[str, str]]) -> None:
        """One log line when a wait passes LONG_WAIT seconds (the periodic line may be 15 s away)."""
        now_waiting = set()
        for cred, snap in self._snapshots():
            for group, st in snap.items():
                if st.waiting_for >= LONG_WAIT:
                    now_waiting.add((cred, group))
                    if (cred, group) not in announced:
                        log.info("%s", wait_line(cred, st), extra={"event": "budget_wait"})
        announced.intersection_update(now_waiting)
        announced.update(now_waiting)

    def render(self) -> Any:
        from rich.table import Table

        streams = self._stream_counts()
        elapsed = time.monotonic() - self._started
        table = Table(title=f"rcetl run — {elapsed:.0f}s", title_justify="left", expand=False)
        for col in ("stream", "records", "files", "bytes", "skipped", "gone", "failed"):
            table.add_column(col, justify="left" if col == "stream" else "right")
        for name, s in sorted(streams.items()):
            table.add_row(name, str(s.records), str(s.files), _human_bytes(s.bytes), str(s.skipped_files),
                          str(s.gone), str(s.failed))
        for line in self._budget_lines():
            table.caption = ((table.caption + "\n") if table.caption else "") + line
        return table

    def _live_loop(self) -> None:
        from rich.console import Console
        from rich.live import Live

        with Live(self.render(), console=Console(stderr=True), refresh_per_second=2, transient=True) as live:
            while not self._stop.wait(0.5):
                live.update(self.render())

    def _log_loop(self) -> None:
        announced: set[tuple[str, str]] = set()
        next_line = time.monotonic() + self.interval
        while not self._stop.wait(1.0):
            self._announce_long_waits(announced)
            if time.monotonic() < next_line:
                continue
            next_line += self.interval
            streams = self._stream_counts()
            counts = {k: {"records": v.records, "files": v.files, "bytes": v.bytes, "failed": v.failed}
                      for k, v in streams.items()}
            text = "; ".join(f"{k}: {v['records']} records, {v['files']} files, {_human_bytes(v['bytes'])}"
                             for k, v in sorted(counts.items())) or "starting"
            log.info("progress: %s %s", text, " | ".join(self._budget_lines()),
                     extra={"event": "progress", "counts": counts})


def print_summary(summary: RunSummary, *, as_json: bool = False) -> None:
    import json

    if as_json:
        print(json.dumps(summary.to_json(), default=str))
        return
    from rich.table import Table

    from .output import console as make_console

    console = make_console()
    table = Table(title=f"run {summary.run_id[:8]} of {summary.pipeline}: {summary.status} "
                        f"in {summary.duration:.1f}s", title_justify="left")
    for col in ("stream", "records", "files", "bytes", "already stored", "gone", "failed"):
        table.add_column(col, justify="left" if col == "stream" else "right")
    for name, s in sorted(summary.streams.items()):
        table.add_row(name, str(s.records), str(s.files), _human_bytes(s.bytes), str(s.skipped_files),
                      str(s.gone), str(s.failed))
    console.print(table)
    if summary.sinks:
        sinks = Table(title="sinks", title_justify="left")
        for col in ("sink", "records written", "files uploaded", "bytes uploaded"):
            sinks.add_column(col, justify="left" if col == "sink" else "right")
        for name, sink in sorted(summary.sinks.items()):
            sinks.add_row(name, str(sink.records), str(sink.files), _human_bytes(sink.bytes))
        console.print(sinks)
    for cred, groups in summary.requests.items():
        req = ", ".join(f"{g} {n}" for g, n in sorted(groups.items()))
        console.print(f"requests ({cred[:10]}): {req}; 429 responses: {summary.throttled.get(cred, 0)}")
    uploaded = sum(s.files for s in summary.sinks.values())
    reread = sum(s.records for s in summary.streams.values())
    if summary.ok and not uploaded and (summary.changed_records == 0 or not reread):
        extra = f" ({reread} record(s) re-read in the overlap window were unchanged)" if reread else ""
        console.print(f"nothing new to archive: the archive is up to date{extra}")
    elif summary.changed_records is not None:
        console.print(f"{summary.changed_records} record(s) new or changed, {uploaded} file(s) uploaded")
    if summary.failed_items:
        console.print(f"[yellow]{summary.failed_items} item(s) in the failed-item queue: they are retried on the "
                      "next run; see `rcetl state show`[/yellow]")
    for err in summary.errors:
        console.print(f"[red]error:[/red] {err}", highlight=False)
