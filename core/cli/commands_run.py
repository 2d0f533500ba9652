"""``rcetl run``, ``validate``, ``schema``: the commands a pipeline file is used with."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import PIPELINE_ARG, load, parse_date


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("validate")(validate)
    app.command("schema")(schema)


def run(
    pipeline_file: Path = PIPELINE_ARG,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (streams, windows, requests per API "
                                 "group, time at the current budget) and write nothing."),
    full_refresh: bool = typer.Option(False, "--full-refresh", help="Ignore checkpoints: re-read everything "
                                      "still retained (idempotent: nothing is duplicated)."),
    stream: list[str] | None = typer.Option(None, "--stream", "-s", help="Only this stream (repeatable)."),
    since: str | None = typer.Option(None, "--since", help="Start of the date range (YYYY-MM-DD)."),
    until: str | None = typer.Option(None, "--until", help="End of the date range (YYYY-MM-DD)."),
    executor: str | None = typer.Option(None, "--executor", help="'local' (threads) or 'celery' "
                                           "(overrides the pipeline's executor)."),
    json_summary: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
    retry_now: bool = typer.Option(False, "--retry-now", help="Retry every item of the failed-item queue in "
                                   "this run, without waiting for its backoff."),
) -> None:
    """Archive everything the pipeline describes; exits 1 if anything failed."""
    from ..interfaces import RunWindow

    pipeline, pm = load(pipeline_file)
    window = RunWindow(since=parse_date(since, "--since"), until=parse_date(until, "--until"),
                       full_refresh=full_refresh)
    known = {s for src in pipeline.sources for s in src.spec.streams}
    for name in stream or []:
        if name not in known:
            raise typer.BadParameter(f"no stream {name!r} in this pipeline (streams: {', '.join(sorted(known))})",
                                     param_hint="--stream")
    selected = set(stream) if stream else None
    if dry_run:
        _dry_run(pipeline, pm, window, selected)
        return
    from ..engine import run_pipeline
    from ..executors import get_executor
    from ..run import RunStats
    from .progress import RunProgress, print_summary

    stats = RunStats()
    chosen = None
    if executor:
        if executor not in ("local", "celery"):
            raise typer.BadParameter("use 'local' or 'celery'", param_hint="--executor")
        from ..engine import _executor_options

        pipeline.executor.type = executor  # type: ignore[assignment]
        chosen = get_executor(executor, **_executor_options(pipeline))
    progress = RunProgress(stats)
    with progress:
        summary = run_pipeline(pipeline, pm, window=window, streams=selected, executor=chosen, stats=stats,
                               on_engine=progress.attach, retry_now=retry_now)
    print_summary(summary, as_json=json_summary)
    if summary.status == "interrupted":
        raise typer.Exit(130)  # the shell's code for Ctrl-C: scripts can tell it from a failure
    if not summary.ok:
        raise typer.Exit(1)


def _dry_run(pipeline, pm, window, selected) -> None:  # noqa: ANN001
    from rich.table import Table

    from ..engine.runtime import Engine
    from .output import console as make_console

    console = make_console()
    with Engine(pipeline, pm, window=window, streams=selected, dry_run=True) as engine:
        plans = engine.plan()
        limits = {name: getattr(conn, "planned_limits", dict)() for name, conn in engine.connections.items()}
    table = Table(title=f"plan for {pipeline.name} (dry run: nothing is requested or written)", title_justify="left")
    for col in ("stream", "what", "requests by API group", "items"):
        table.add_column(col)
    warnings = []
    for plan in plans:
        req = ", ".join(f"{g}: {n}" for g, n in sorted(plan.requests.items())) or "-"
        table.add_row(plan.stream, plan.description, req, "" if plan.items is None else str(plan.items))
        warnings.extend(f"{plan.stream}: {w}" for w in plan.warnings)
    console.print(table)
    for sink in pipeline.sinks:
        console.print(f"sink {sink.name} ({sink.spec.name}): streams {', '.join(sorted(sink.streams)) or '-'}")
    for line in _duration_estimate(plans, limits):
        console.print(line)
    for w in warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")


def _duration_estimate(plans, limits) -> list[str]:  # noqa: ANN001
    """How long the planned requests take at the budget: groups are spent in parallel, so the
    slowest group sets the pace."""
    import math
    from datetime import timedelta

    totals: dict[str, int] = {}
    for plan in plans:
        for group, n in plan.requests.items():
            totals[group.lower()] = totals.get(group.lower(), 0) + n
    lines = []
    for conn, groups in limits.items():
        by_group = {g.lower(): v for g, v in groups.items()}
        paced = []
        for group, n in sorted(totals.items()):
            if group in by_group and n:
                limit, window = by_group[group]
                paced.append((math.ceil(n / max(limit, 1)) * window if n > limit else 0.0, group, n, limit, window))
        if paced:
            seconds, group, n, limit, window = max(paced)
            lines.append(f"estimate ({conn}): {', '.join(f'{g} {n}' for _, g, n, _, _ in paced)} requests; "
                         f"at {limit} {group} requests per {window:.0f}s this takes about "
                         f"{timedelta(seconds=round(seconds))} (plus downloads not yet counted)")
    return lines


def validate(pipeline_file: Path = PIPELINE_ARG) -> None:
    """Check a pipeline file completely, without any network call. Exits 2 listing every problem."""
    pipeline, _ = load(pipeline_file)
    streams = ", ".join(sorted({s for src in pipeline.sources for s in src.spec.streams}))
    print(f"{pipeline_file}: valid pipeline {pipeline.name!r}: {len(pipeline.connections)} connection(s), "
          f"streams {streams}, sinks {', '.join(s.name for s in pipeline.sinks)}")


def schema(output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file.")) -> None:
    """Print the JSON Schema of pipeline files (for editors: yaml-language-server, VS Code)."""
    import json

    from ..config.schema import pipeline_schema
    from ..registry import get_plugin_manager

    text = json.dumps(pipeline_schema(get_plugin_manager()), indent=2)
    if output:
        output.write_text(text + "\n")
    else:
        print(text)
