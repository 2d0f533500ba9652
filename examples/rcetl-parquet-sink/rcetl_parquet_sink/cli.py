"""``rcetl parquet``: commands this plugin adds to rcetl through the ``rcetl_cli`` hook."""

from __future__ import annotations

import typer

app = typer.Typer(help="Parquet data lakes written by the parquet sink.", no_args_is_help=True)


@app.command("view")
def view(path: str = typer.Argument(..., help="The lake's folder or URL (the sink's `path`).")) -> None:
    """Print the SQL of the dedupe view (latest write of every key) for DuckDB, Spark or Athena."""
    from .sink import DEDUPE_SQL

    typer.echo(DEDUPE_SQL.format(root=path.rstrip("/")))


@app.command("compact")
def compact(path: str = typer.Argument(..., help="The lake's folder or URL."),
            stream: list[str] = typer.Option(["call-log", "recording", "message-store"], "--stream", "-s")) -> None:  # noqa: B008
    """Rewrite each partition as one file of the latest rows (run it when no pipeline writes)."""
    from pathlib import Path

    import rcetl

    from .config import ParquetConfig
    from .sink import ParquetSink

    ctx = rcetl.RunContext(pipeline="compact", budgets=None, coordinator=None, spool_dir=Path("."),  # type: ignore[arg-type]
                           base_dir=Path.cwd())
    sink = ParquetSink("parquet", ParquetConfig(path=path), ctx)
    for name in stream:
        before, after = sink.compact(name)
        typer.echo(f"{name}: {before} file(s) -> {after}")
