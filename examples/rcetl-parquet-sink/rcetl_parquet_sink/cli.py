"""``rcetl parquet``: a command group this plugin adds to rcetl through the ``rcetl_cli`` hook."""

from __future__ import annotations

import typer

app = typer.Typer(help="Parquet files written by the example parquet sink.", no_args_is_help=True)


@app.command("view")
def view(path: str = typer.Argument(..., help="The sink's `path` (a folder or URL).")) -> None:
    """Print the SQL of the dedupe view (the latest write of every key) for DuckDB, Spark or Athena."""
    from .sink import DEDUPE_SQL

    typer.echo(DEDUPE_SQL.format(root=path.rstrip("/")))


@app.command("files")
def files(path: str = typer.Argument(..., help="The sink's `path` (a local folder).")) -> None:
    """List the Parquet files, one line each (a second command, to show a group of several)."""
    from pathlib import Path

    for f in sorted(Path(path).rglob("part-*.parquet")):
        typer.echo(str(f))
