"""The run report observer: ``<run_id>.json`` and a one-page ``<run_id>.html`` (plus ``latest.*``).

Options (``observers: {report: {...}}`` in the pipeline file):

- ``path``: folder of the reports, relative to the pipeline file (default ``<output_dir>/reports``,
  beside the state)
- ``enabled``: ``false`` turns the report off

The HTML page has no external script, style sheet or font: archive machines are often offline.
Every figure carries ``data-*`` attributes so a test (or a script) can read the numbers back.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..run import RunInfo, RunSummary
from ..secrets import redact
from .collector import RunCollector


class ReportOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    path: str | None = Field(None, description="folder of the reports (default: <state folder>/reports)")


@dataclass
class ReportFiles:
    html: Path
    json: Path
    latest_html: Path
    latest_json: Path


def report_dir(run: RunInfo, options: ReportOptions) -> Path:
    base = Path(run.pipeline_file).resolve().parent if run.pipeline_file else Path.cwd()
    if options.path:
        folder = Path(options.path).expanduser()
        return folder if folder.is_absolute() else base / folder
    return Path(run.output_dir or base / ".rcetl" / run.pipeline) / "reports"


def build_report(run: RunInfo, summary: RunSummary, collector: RunCollector) -> dict[str, Any]:
    data = summary.to_json()
    data["errors"] = [redact(e) for e in data.get("errors", [])]
    totals = {k: sum(getattr(s, k) for s in summary.streams.values())
              for k in ("records", "files", "bytes", "skipped_files", "gone", "failed", "retried")}
    totals["requests"] = sum(n for groups in summary.requests.values() for n in groups.values())
    totals["throttled"] = sum(summary.throttled.values())
    totals["budget_wait_seconds"] = round(sum(collector.waits_total.values()), 3)
    return {
        "report_version": 1,
        "generated_at": time.time(),
        "run": {"run_id": run.run_id, "pipeline": run.pipeline, "pipeline_file": run.pipeline_file,
                "executor": run.executor, "started_at": run.started_at},
        "summary": data,
        "totals": totals,
        "timeline": collector.timeline(summary.duration),
        "budget_waits": {"by_group": {g: round(w, 3) for g, w in collector.waits_total.items()},
                         "events": collector.waits},
        "failures": {"total": collector.failures_total, "first": collector.failures},
    }


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_report(run: RunInfo, summary: RunSummary, collector: RunCollector) -> ReportFiles | None:
    options = ReportOptions.model_validate(run.observers.get("report") or {})
    if not options.enabled or run.dry_run:
        return None
    folder = report_dir(run, options)
    report = build_report(run, summary, collector)
    text = json.dumps(report, indent=2, default=str)
    page = render_html(report)
    files = ReportFiles(folder / f"{run.run_id}.html", folder / f"{run.run_id}.json",
                        folder / "latest.html", folder / "latest.json")
    _atomic_write(files.json, text)
    _atomic_write(files.html, page)
    _atomic_write(files.latest_json, text)
    _atomic_write(files.latest_html, page)
    return files


# --- HTML --------------------------------------------------------------------------------------

STREAM_COLUMNS = (("records", "records"), ("files", "files"), ("bytes", "bytes"), ("skipped_files", "already stored"),
                  ("gone", "gone"), ("failed", "failed"), ("retried", "retried"))
PALETTE = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#0891b2", "#dc2626", "#4b5563")

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#111;padding:0 16px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:22px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555} .status{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.ok{background:#16a34a} .partial{background:#d97706} .failed,.interrupted{background:#dc2626}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{border:1px solid #ddd;border-radius:8px;padding:8px 14px;min-width:120px}
.card .v{font-size:20px;font-weight:600} .card .l{color:#555;font-size:12px}
table{border-collapse:collapse;width:100%} th,td{padding:4px 8px;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left} th{background:#f6f6f6}
.err{font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap;color:#991b1b;text-align:left}
.legend span{display:inline-block;margin-right:14px} .sw{display:inline-block;width:10px;height:10px;margin-right:4px}
"""


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _num(name: str, value: Any, text: str | None = None, **attrs: str) -> str:
    extra = "".join(f' data-{k}="{escape(str(v))}"' for k, v in attrs.items())
    return f'<td data-field="{escape(name)}" data-value="{escape(str(value))}"{extra}>{escape(text or str(value))}</td>'


def render_html(report: dict[str, Any]) -> str:
    s, run, totals = report["summary"], report["run"], report["totals"]
    status = str(s["status"])
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(s["started_at"]))
    cards = [("records", totals["records"], None), ("files", totals["files"], None),
             ("bytes", totals["bytes"], human_bytes(totals["bytes"])), ("failed items", s["failed_items"], None),
             ("requests", totals["requests"], None), ("429 responses", totals["throttled"], None),
             ("budget wait (s)", totals["budget_wait_seconds"], None), ("duration (s)", s["duration"], None)]
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>rcetl run {escape(run['run_id'][:8])} of {escape(run['pipeline'])}: {escape(status)}</title>",
        f"<style>{CSS}</style></head><body>",
        f'<h1>Run of <span id="pipeline">{escape(run["pipeline"])}</span> '
        f'<span class="status {escape(status)}" id="status" data-value="{escape(status)}">{escape(status)}</span></h1>',
        f'<div class="meta">run <code id="run-id">{escape(run["run_id"])}</code> · started {started} · '
        f'{escape(str(s["duration"]))} s · executor {escape(run["executor"])} · {escape(run["pipeline_file"])}</div>',
        '<div class="cards">',
    ]
    for label, value, text in cards:
        key = label.split(" (")[0].replace(" ", "_")
        out.append(f'<div class="card"><div class="v" data-total="{escape(key)}" data-value="{escape(str(value))}">'
                   f'{escape(text or str(value))}</div><div class="l">{escape(label)}</div></div>')
    out.append("</div>")

    out.append('<h2>Streams</h2><table id="streams"><tr><th>stream</th>'
               + "".join(f"<th>{escape(label)}</th>" for _, label in STREAM_COLUMNS) + "</tr>")
    for name, st in sorted(s["streams"].items()):
        cells = "".join(_num(k, st[k], human_bytes(st[k]) if k == "bytes" else None) for k, _ in STREAM_COLUMNS)
        out.append(f'<tr data-stream="{escape(name)}"><td>{escape(name)}</td>{cells}</tr>')
    out.append("</table>")

    out.append('<h2>Sinks</h2><table id="sinks"><tr><th>sink</th><th>records written</th><th>files uploaded</th>'
               "<th>bytes uploaded</th></tr>")
    for name, st in sorted(s["sinks"].items()):
        out.append(f'<tr data-sink="{escape(name)}"><td>{escape(name)}</td>{_num("records", st["records"])}'
                   f'{_num("files", st["files"])}{_num("bytes", st["bytes"], human_bytes(st["bytes"]))}</tr>')
    out.append("</table>")

    out.append("<h2>Budget use over time</h2>")
    out.append(timeline_svg(report["timeline"]))
    out.append('<table id="requests"><tr><th>connection</th><th>API group</th><th>requests</th>'
               "<th>waited for budget (s)</th></tr>")
    waits = report["budget_waits"]["by_group"]
    for conn, groups in sorted(s["requests"].items()):
        for group, n in sorted(groups.items()):
            out.append(f'<tr data-connection="{escape(conn)}" data-group="{escape(group)}"><td>{escape(conn)}</td>'
                       f'<td>{escape(group)}</td>{_num("requests", n)}{_num("wait", waits.get(group, 0))}</tr>')
    out.append("</table>")

    failures = report["failures"]
    out.append(f'<h2>Failures <span data-total="failures" data-value="{failures["total"]}">({failures["total"]})</span></h2>')
    if not failures["first"] and not s["errors"]:
        out.append("<p>None: every item was archived.</p>")
    if failures["first"]:
        out.append('<table id="failures"><tr><th>stream</th><th>key</th><th>error</th></tr>')
        for f in failures["first"]:
            out.append(f'<tr><td>{escape(str(f["stream"]))}</td><td>{escape(str(f["key"]))}</td>'
                       f'<td class="err">{escape(str(f["error"]))}</td></tr>')
        out.append("</table>")
        if failures["total"] > len(failures["first"]):
            out.append(f"<p>… and {failures['total'] - len(failures['first'])} more (see the JSON report).</p>")
    if s["errors"]:
        out.append('<h2>Errors</h2><ul id="errors">'
                   + "".join(f'<li class="err">{escape(str(e))}</li>' for e in s["errors"]) + "</ul>")
    out.append('<p class="meta">Failed items are retried on the next run. Written by rcetl\'s report observer; '
               "the same figures are in the JSON file beside this page.</p></body></html>")
    return "\n".join(out)


def timeline_svg(points: list[dict[str, Any]], width: int = 1000, height: int = 260) -> str:
    """Records archived per interval (stacked by stream) over budget waits per interval (by API group)."""
    if not points:
        return "<p>No activity recorded.</p>"
    streams = sorted({s for p in points for s in p.get("items", {})})
    groups = sorted({g for p in points for g in p.get("budget_wait", {})})
    left, right, top, mid, bottom = 56, 12, 16, 170, 240
    n = len(points)
    bar = (width - left - right) / n
    max_items = max([sum(p.get("items", {}).values()) for p in points] + [1])
    max_wait = max([sum(p.get("budget_wait", {}).values()) for p in points] + [0.001])
    out = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="records archived and budget waits over time">',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
           f'<text x="4" y="{top + 4}" font-size="11" fill="#555">{max_items} rec</text>',
           f'<text x="4" y="{mid + 14}" font-size="11" fill="#555">{max_wait:.1f} s wait</text>',
           f'<line x1="{left}" y1="{mid}" x2="{width - right}" y2="{mid}" stroke="#999"/>']
    for i, p in enumerate(points):
        x = left + i * bar
        y = mid
        for j, stream in enumerate(streams):
            count = p.get("items", {}).get(stream, 0)
            if count:
                h = (mid - top) * count / max_items
                y -= h
                out.append(f'<rect class="items" data-stream="{escape(stream)}" data-t="{p["t"]}" data-value="{count}" '
                           f'x="{x + 1:.1f}" y="{y:.1f}" width="{max(bar - 2, 1):.1f}" height="{h:.1f}" '
                           f'fill="{PALETTE[j % len(PALETTE)]}"/>')
        y = mid
        for j, group in enumerate(groups):
            wait = p.get("budget_wait", {}).get(group, 0)
            if wait:
                h = (bottom - mid - 4) * wait / max_wait
                out.append(f'<rect class="wait" data-group="{escape(group)}" data-t="{p["t"]}" data-value="{wait}" '
                           f'x="{x + 1:.1f}" y="{y + 1:.1f}" width="{max(bar - 2, 1):.1f}" height="{h:.1f}" '
                           f'fill="{PALETTE[(j + 3) % len(PALETTE)]}" opacity="0.8"/>')
                y += h
    last = points[-1]["t"] + points[-1].get("step", 1)
    out.append(f'<text x="{left}" y="{height - 4}" font-size="11" fill="#555">0 s</text>')
    out.append(f'<text x="{width - right - 40}" y="{height - 4}" font-size="11" fill="#555">{last} s</text>')
    out.append("</svg>")
    legend = "".join(f'<span><i class="sw" style="background:{PALETTE[j % len(PALETTE)]}"></i>{escape(s)} records</span>'
                     for j, s in enumerate(streams))
    legend += "".join(f'<span><i class="sw" style="background:{PALETTE[(j + 3) % len(PALETTE)]}"></i>'
                      f'waiting for {escape(g)} budget</span>' for j, g in enumerate(groups))
    return "\n".join(out) + f'<div class="legend">{legend}</div>'
