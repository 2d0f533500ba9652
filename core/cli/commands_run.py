"""``rcetl run``, ``validate``, ``schema``: the commands a pipeline file is used with."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import PIPELINE_ARG, check, load, parse_date


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
    count: bool = typer.Option(False, "--count", help="With --dry-run: read the listings (their list requests "
                               "are sent) and count every download; still downloads and writes nothing."),
    redownload: bool = typer.Option(False, "--redownload", help="Download every binary again, even those every "
                                    "sink already holds with their recorded checksum (by default they are "
                                    "reused: a re-read record costs no download)."),
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
    if count and not dry_run:
        raise typer.BadParameter("--count only goes with --dry-run", param_hint="--count")
    if dry_run:
        _dry_run(pipeline, pm, window, selected, count=count, as_json=json_summary)
        return
    from ..engine import run_pipeline
    from ..executors import get_executor
    from .progress import RunProgress, print_summary

    chosen = None
    if executor:
        if executor not in ("local", "celery"):
            raise typer.BadParameter("use 'local' or 'celery'", param_hint="--executor")
        from ..engine import _executor_options

        pipeline.executor.type = executor  # type: ignore[assignment]
        chosen = get_executor(executor, **_executor_options(pipeline))
    progress = RunProgress()
    with progress:
        # the progress display reads the run's counters and budgets from its session
        summary = run_pipeline(pipeline, pm, window=window, streams=selected, executor=chosen,
                               on_session=progress.attach, retry_now=retry_now, redownload=redownload)
    print_summary(summary, as_json=json_summary)
    if not json_summary:
        _print_reused(summary)
    if summary.status == "interrupted":
        raise typer.Exit(130)  # the shell's code for Ctrl-C: scripts can tell it from a failure
    if not summary.ok:
        raise typer.Exit(1)


def _print_reused(summary) -> None:  # noqa: ANN001 - RunSummary
    """Say what re-reading cost nothing: binaries every sink held with their recorded checksum."""
    reused = {name: s.reused for name, s in sorted(summary.streams.items()) if s.reused}
    if reused:
        from .output import console as make_console

        per_stream = ", ".join(f"{name} {n}" for name, n in reused.items())
        make_console().print(f"{sum(reused.values())} download request(s) saved: binaries already archived with "
                             f"their checksum were not downloaded again ({per_stream}; --redownload forces it)")


def _dry_run(pipeline, pm, window, selected, *, count: bool = False, as_json: bool = False) -> None:  # noqa: ANN001
    from ..engine.opened import OpenedPipeline, state_exists
    from . import plan as planning
    from .output import console as make_console
    from .output import print_table

    console = make_console()
    # --count: the listing's requests spend the budget a run right after must see
    persist = count and state_exists(pipeline.state_url)
    with OpenedPipeline(pipeline, pm, dry_run=True, persist_budgets=persist) as opened:
        plans = opened.plan(window, selected)
        if count:
            found, sent = planning.count(opened, window, selected)
            plans = planning.counted_plans(plans, found, sent)
        lines = planning.duration_lines(plans, opened.connections, counted=count)
    if as_json:
        import json

        print(json.dumps({"pipeline": pipeline.name, "counted": count,
                          "plans": [{"stream": p.stream, "what": p.description, "requests": p.requests,
                                     "items": p.items, "warnings": p.warnings} for p in plans],
                          "requests": planning.totals(plans), "estimates": lines}))
        return
    what = "listings read, nothing downloaded or written" if count else "nothing is requested or written"
    print_table(f"plan for {pipeline.name} (dry run: {what})", ["stream", "what", "requests by API group", "items"],
                [[plan.stream, plan.description,
                  ", ".join(f"{g}: {n}" for g, n in sorted(plan.requests.items())) or "-",
                  "" if plan.items is None else str(plan.items)] for plan in plans], fold=("stream",))
    warnings = [f"{plan.stream}: {w}" for plan in plans for w in plan.warnings]
    for sink in pipeline.sinks:
        console.print(f"sink {sink.name} ({sink.spec.name}): streams {', '.join(sorted(sink.streams)) or '-'}")
    for line in lines:
        console.print(line, highlight=False)
    for w in warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")


def validate(pipeline_file: Path = PIPELINE_ARG) -> None:
    """Check a pipeline file completely, without any network call. Exits 2 listing every problem."""
    pipeline, _ = check(pipeline_file)  # the sink classes themselves are loaded by `run`
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
