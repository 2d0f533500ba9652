"""``rcetl verify`` and ``rcetl purge``: prove the archive complete, then (opt-in) free the source."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import PIPELINE_ARG, load, parse_date


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
    app.command("purge")(purge)


def _report(pipeline_file: Path, since: str | None, until: str | None, rehash: bool | None):  # noqa: ANN202
    from ..engine.runtime import Engine
    from ..interfaces import RunWindow
    from ..verify import verify as run_verify

    pipeline, pm = load(pipeline_file)
    window = RunWindow(since=parse_date(since, "--since"), until=parse_date(until, "--until"), full_refresh=True)
    engine = Engine(pipeline, pm, window=window)
    return engine, run_verify


def verify(
    pipeline_file: Path = PIPELINE_ARG,
    since: str | None = typer.Option(None, "--since", help="Start of the date range (YYYY-MM-DD)."),
    until: str | None = typer.Option(None, "--until", help="End of the date range (YYYY-MM-DD)."),
    rehash: bool | None = typer.Option(None, "--rehash/--no-rehash", help="Read every stored binary back "
                                          "and hash it (default: only where cheap, e.g. local folders)."),
    json_output: bool = typer.Option(False, "--json", help="The report as JSON, for machines."),
    usage: bool = typer.Option(False, "--usage", help="Also print usage per extension and day."),
) -> None:
    """Reconcile the archive against the source; exits 1 if anything is missing, doubled or corrupt."""
    engine, run_verify = _report(pipeline_file, since, until, rehash)
    with engine:
        report = run_verify(engine, rehash=rehash)
    if json_output:
        import json

        print(json.dumps(report.to_json(), indent=2, default=str))
    else:
        _print(report, usage)
    if not report.ok:
        raise typer.Exit(1)


def _print(report, usage: bool) -> None:  # noqa: ANN001
    from rich.table import Table

    from .output import console as make_console

    console = make_console()
    t = Table(title="archive vs source", title_justify="left")
    for col in ("stream", "at source", "in sinks", "binaries", "gone at source", "problems"):
        t.add_column(col, justify="left" if col == "stream" else "right")
    for name, c in sorted(report.streams.items()):
        problems = sum(1 for f in report.problems if f.stream == name)
        held = ", ".join(f"{s}: {n}" for s, n in sorted(c.sinks.items()))
        t.add_row(name, str(c.source), held, str(c.binaries), str(c.gone), str(problems))
    console.print(t)
    if report.problems:
        p = Table(title=f"{len(report.problems)} problem(s)", title_justify="left")
        for col in ("kind", "stream", "key", "sink", "detail"):
            p.add_column(col)
        for f in report.problems[:200]:
            p.add_row(f.kind, f.stream, str(f.key), f.sink, f.detail)
        console.print(p)
    else:
        console.print("[green]verified: every sink holds everything the source holds, checksums match[/green]")
    if usage and report.usage:
        u = Table(title="usage per extension and day", title_justify="left")
        metrics = sorted({m for c in report.usage.values() for m in c})
        for col in ("day", "extension", *metrics):
            u.add_column(col)
        for (day, ext), c in sorted(report.usage.items()):
            u.add_row(day, ext, *(f"{c.get(m, 0):g}" for m in metrics))
        console.print(u)


def purge(
    pipeline_file: Path = PIPELINE_ARG,
    yes: bool = typer.Option(False, "--yes", help="Really delete (default: a dry run listing what would go)."),
    since: str | None = typer.Option(None, "--since", help="Start of the date range (YYYY-MM-DD)."),
    until: str | None = typer.Option(None, "--until", help="End of the date range (YYYY-MM-DD)."),
) -> None:
    """Delete at the source what `verify` proves archived in every sink (opt-in: needs `purge:`)."""
    from ..errors import RcetlError
    from ..purge import purge as run_purge
    from ..purge import require_enabled
    from .output import fail

    try:
        require_enabled(load(pipeline_file)[0])  # before any sink is opened or request sent
    except RcetlError as exc:
        raise typer.Exit(fail(exc)) from None
    engine, run_verify = _report(pipeline_file, since, until, None)
    with engine:
        report = run_verify(engine)
        actions = run_purge(engine, report, act=yes)
    for a in actions:
        print(f"{a.action}: {a.stream} {a.key!r}")
    verb = "deleted" if yes else "would delete (dry run; add --yes to act)"
    print(f"{len(actions)} item(s) {verb}; {len(report.problems)} problem(s) kept their items at the source")
