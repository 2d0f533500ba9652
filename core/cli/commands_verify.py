"""``rcetl verify`` and ``rcetl purge``: prove the archive complete, then (opt-in) free the source."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import PIPELINE_ARG, load, parse_date

SINCE = typer.Option(None, "--since", help="Start of the date range (YYYY-MM-DD).")
UNTIL = typer.Option(None, "--until", help="End of the date range (YYYY-MM-DD).")
REHASH = typer.Option(None, "--rehash/--no-rehash", help="Read every stored binary back, hash it and run the "
                      "content check (default: only where cheap, e.g. local folders). Only items whose bytes "
                      "were read back (or re-downloaded with --deep) count as proven for `rcetl purge`.")


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
    app.command("purge")(purge)


def _window(since: str | None, until: str | None):  # noqa: ANN202 - a RunWindow
    from ..interfaces import RunWindow

    return RunWindow(since=parse_date(since, "--since"), until=parse_date(until, "--until"), full_refresh=True)


def verify(
    pipeline_file: Path = PIPELINE_ARG,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    rehash: bool | None = REHASH,
    deep: int = typer.Option(0, "--deep", min=0, metavar="N", help="Also download N archived binaries again, "
                             "chosen at random, and compare their SHA-256 with the record and with every sink's "
                             "stored bytes (N download requests from the shared budget; see --dry-run)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the --deep sample (to repeat a sample)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what verify would request (the listing, and "
                                 "the --deep downloads) and exit; nothing is requested or written."),
    json_output: bool = typer.Option(False, "--json", help="The report as JSON, for machines."),
    usage: bool = typer.Option(False, "--usage", help="Also print usage per extension and day."),
) -> None:
    """Reconcile the archive against the source; exits 1 if anything is missing, shared, doubled or corrupt."""
    if dry_run:
        _dry_run(pipeline_file, since, until, deep)
        return
    from ..engine.opened import OpenedPipeline
    from ..verify import verify as run_verify

    pipeline, pm = load(pipeline_file)
    window = _window(since, until)
    with OpenedPipeline(pipeline, pm) as opened:
        report = run_verify(opened, window, rehash=rehash, deep=deep, seed=seed)
    if json_output:
        import json

        print(json.dumps(report.to_json(), indent=2, default=str))
    else:
        _print(report, usage)
    if not report.ok:
        raise typer.Exit(1)


def _dry_run(pipeline_file: Path, since: str | None, until: str | None, deep: int) -> None:
    from ..engine.opened import OpenedPipeline
    from .output import console as make_console

    pipeline, pm = load(pipeline_file)
    window = _window(since, until)
    with OpenedPipeline(pipeline, pm, dry_run=True) as opened:
        plans = opened.plan(window)
    console = make_console()
    console.print(f"verify {pipeline.name} (dry run: nothing is requested or written)")
    for plan in plans:
        listing = ", ".join(f"{g}: {n}" for g, n in sorted(plan.requests.items())) or "-"
        console.print(f"  {plan.stream}: lists the source again ({listing} request(s) by API group); "
                      f"binaries are not downloaded")
    if deep:
        console.print(f"  --deep {deep}: downloads up to {deep} archived binaries again, chosen at random among "
                      "those stored; one download request each, in its stream's download group of the shared "
                      "budget (a recording is one Heavy request, an attachment one Medium)")
    console.print("  stored binaries are read back from local folders (from every sink with --rehash)")


def _print(report, usage: bool) -> None:  # noqa: ANN001
    from .output import print_table

    rows = []
    for name, c in sorted(report.streams.items()):
        problems = sum(1 for f in report.problems if f.stream == name)
        held = ", ".join(f"{s}: {n}" for s, n in sorted(c.sinks.items()))
        rows.append([name, str(c.source), held, str(c.binaries), str(c.gone), str(c.deleted_at_source), str(problems)])
    print_table("archive vs source", ["stream", "at source", "in sinks", "binaries", "gone at source",
                                      "deleted at source", "problems"], rows, fold=("stream", "in sinks"))
    if report.deep:
        print("re-downloaded and compared (--deep): " + ", ".join(f"{s}: {n}" for s, n in sorted(report.deep.items())))
    notes = [f for f in report.findings if f.kind in ("superseded", "deleted-at-source", "deep-skipped", "unlisted")]
    if notes:
        print_table(f"{len(notes)} note(s), not problems", ["kind", "stream", "key", "sink", "detail"],
                    [[f.kind, f.stream, str(f.key), f.sink, f.detail] for f in notes[:200]], fold=("key", "detail"))
    if report.problems:
        print_table(f"{len(report.problems)} problem(s)", ["kind", "stream", "key", "sink", "detail"],
                    [[f.kind, f.stream, str(f.key), f.sink, f.detail] for f in report.problems[:200]],
                    fold=("key", "detail"))
    else:
        print("verified: every sink holds everything the source holds, checksums match "
              f"({len(report.proven)} item(s) proven by their stored bytes)")
    if usage and report.usage:
        metrics = sorted({m for c in report.usage.values() for m in c})
        print_table("usage per extension and day", ["day", "extension", *metrics],
                    [[day, ext, *(f"{c.get(m, 0):g}" for m in metrics)] for (day, ext), c in sorted(report.usage.items())])


def purge(
    pipeline_file: Path = PIPELINE_ARG,
    yes: bool = typer.Option(False, "--yes", help="Really delete (default: a dry run listing what would go)."),
    since: str | None = SINCE,
    until: str | None = UNTIL,
    rehash: bool | None = REHASH,
) -> None:
    """Delete at the source what `verify` proves archived in every sink (opt-in: needs `purge:`).

    Refuses, each with its reason: items whose stored content fails the content check, items sharing
    a stored binary with another, items with any other problem, and items no verify proved recently."""
    from ..engine.opened import OpenedPipeline
    from ..errors import RcetlError
    from ..purge import purge as run_purge
    from ..purge import require_enabled
    from ..verify import verify as run_verify
    from .output import fail

    pipeline, pm = load(pipeline_file)
    try:
        require_enabled(pipeline)  # before any sink is opened or request sent
    except RcetlError as exc:
        raise typer.Exit(fail(exc)) from None
    window = _window(since, until)
    with OpenedPipeline(pipeline, pm) as opened:
        report = run_verify(opened, window, rehash=rehash)
        actions = run_purge(opened, report, act=yes)
    for a in actions:
        print(a.line())
    acted = [a for a in actions if not a.kept]
    refused = sum(1 for a in actions if a.refused)
    skipped = len(actions) - len(acted) - refused
    verb = "deleted" if yes else "would delete (dry run; add --yes to act)"
    print(f"{len(acted)} item(s) {verb}; {refused} refused; {skipped} already gone at the source; "
          f"{len(report.problems)} problem(s) kept their items at the source")
