"""``rcetl plugins``: what is installed, where it comes from, and scaffolds for new plugins."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ..interfaces import SinkEntry
    from ..registry import PluginManager

app = typer.Typer(help="List installed source, sink and connection plugins; scaffold new ones.",
                  no_args_is_help=True)


@app.command("list")
def list_plugins(json_output: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Every plugin found through the `rcetl` entry points, with package, version and origin."""
    import json

    from rich.console import Console

    from ..registry import get_plugin_manager
    from .output import print_table

    pm = get_plugin_manager()
    described: list[tuple[str, str, str]] = [  # (kind, name, description)
        *(("source", n, spec.description) for n, spec in pm.sources().items()),
        *(("sink", n, _sink_description(entry)) for n, entry in pm.sinks().items()),
        *(("connection", n, spec.description) for n, spec in pm.connections().items()),
        *(("server", n, spec.description) for n, spec in pm.embedded_servers().items()),
    ]
    order = ["source", "sink", "connection", "server"]
    rows = []
    for kind, name, description in sorted(described, key=lambda d: (order.index(d[0]), d[1])):
        info = pm.plugin_of(kind, name)
        rows.append({"kind": kind, "name": name, "package": info.package if info else "?",
                     "version": info.version if info else "?", "origin": info.origin if info else "?",
                     "module": info.module if info else "?", "description": description})
    broken = [{"entry_point": i.name, "module": i.module, "package": i.package, "error": i.error}
              for i in pm.infos if i.error]
    if json_output:
        print(json.dumps({"plugins": rows, "broken": broken}, indent=2))
        return
    columns = ["kind", "name", "package", "version", "origin", "description"]
    print_table("rcetl plugins", columns, [[r[c] for c in columns] for r in rows], fold=("name", "package"))
    console = Console()
    for b in broken:
        console.print(f"[red]broken plugin[/red] {b['entry_point']} ({b['module']}) from package "
                      f"{b['package']!r}: {b['error']} — fix or uninstall that package; other plugins work.",
                      highlight=False)


def _sink_description(entry: SinkEntry) -> str:
    from ..errors import PluginError

    try:  # a sink's class is imported only here and when a pipeline uses it
        return entry.load().description
    except PluginError as exc:
        return f"not usable: {exc.message}; {exc.hint}"


@app.command("show")
def show(name: str = typer.Argument(..., help="A source, sink or connection plugin name.")) -> None:
    """A plugin's description and every option it takes, with types and defaults."""
    from rich.console import Console
    from rich.table import Table

    from ..config.validate import did_you_mean
    from ..registry import get_plugin_manager

    pm = get_plugin_manager()
    kinds = [k for k, names in (("source", pm.sources()), ("sink", pm.sinks()), ("connection", pm.connections()))
             if name in names]
    if not kinds:
        every = list(pm.sources()) + list(pm.sinks()) + list(pm.connections())
        hint = did_you_mean(name, every) or f"installed: {', '.join(sorted(every))}"
        typer.echo(f"error: no plugin named {name!r}; {hint}", err=True)
        raise typer.Exit(2)
    console = Console()
    for kind in kinds:
        description, model, more = _about(pm, kind, name)
        info = pm.plugin_of(kind, name)
        console.print(f"[bold]{kind} {name}[/bold] — {description}")
        if info:
            console.print(f"package {info.package} {info.version} ({info.origin}), module {info.module}")
        if more:
            console.print(more)
        table = Table(title="options", title_justify="left")
        for col in ("option", "type", "default", "description"):
            table.add_column(col)
        for fname, field in model.model_fields.items():
            default = "(required)" if field.is_required() else repr(field.get_default(call_default_factory=True))
            ann = str(field.annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")
            table.add_row(field.alias or fname, ann, default, field.description or "")
        console.print(table)


def _about(pm: PluginManager, kind: str, name: str) -> tuple[str, type[BaseModel], str | None]:
    """A plugin's description, the model of its options, and what else to say (a source's streams)."""
    if kind == "sink":  # imports the sink's module; a missing extra is one line with the pip install
        sink_class = pm.sinks()[name].load()
        return sink_class.description, sink_class.config_model, None
    if kind == "source":
        source = pm.sources()[name]
        return source.description, source.config, f"streams: {', '.join(source.streams)}; connection: {source.connection}"
    connection = pm.connections()[name]
    return connection.description, connection.config, None


@app.command("new")
def new(
    kind: str = typer.Argument(..., help="What to scaffold: 'sink' or 'source'."),
    name: str = typer.Argument(..., help="The plugin's name in pipeline files, e.g. 'my-warehouse'."),
    dest: Path | None = typer.Option(None, "--dest", "-d", help="Folder to create (default: ./rcetl-NAME)."),
    sink_kind: str = typer.Option("records", "--kind", help="For sinks: 'records' (rows) or 'blobs' (files)."),
    force: bool = typer.Option(False, "--force", help="Write into a folder that is not empty."),
) -> None:
    """A ready-to-publish plugin package: pyproject entry point, typed config, contract tests, README."""
    from ..scaffold import ScaffoldError, generate

    try:
        root = generate(kind, name, dest, sink_kinds=sink_kind, force=force)
    except ScaffoldError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"created {root}\nnext: pip install -e '{root}[test]' && pytest {root}")
