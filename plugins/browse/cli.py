"""``rcetl browse PIPELINE``: serve the archive's read-only web view on 127.0.0.1 (by default)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import typer

import rcetl

TOKEN_ENV = "RCETL_BROWSE_TOKEN"
USER_ENV, PASSWORD_ENV = "RCETL_BROWSE_USER", "RCETL_BROWSE_PASSWORD"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def credentials_for(host: str) -> Any:
    """None on loopback; from the environment otherwise, or a clear error (exit 2)."""
    from .web import Credentials

    if is_loopback(host):
        return None
    creds = Credentials(token=os.environ.get(TOKEN_ENV) or None, user=os.environ.get(USER_ENV) or None,
                        password=os.environ.get(PASSWORD_ENV) or None)
    if not creds.token and not (creds.user and creds.password):
        raise rcetl.ConfigError(
            f"--host {host} makes the archive reachable from other machines, and no credentials are set",
            hint=f"set {TOKEN_ENV} (clients send 'Authorization: Bearer <token>') or {USER_ENV} and "
                 f"{PASSWORD_ENV} (basic auth), or keep the default --host 127.0.0.1")
    for value in (creds.token, creds.password):
        if value:
            rcetl.register_secret(value)
    return creds


def reports_dir(pipeline: Any) -> Path:
    """Where the report observer writes (its ``path`` option, else ``<state folder>/reports``)."""
    options = (pipeline.observers or {}).get("report") or {}
    if options.get("path"):
        folder = Path(str(options["path"])).expanduser()
        return folder if folder.is_absolute() else pipeline.base_dir / folder
    return pipeline.base_dir / ".rcetl" / pipeline.name / "reports"


def _kind(sink: Any) -> str | None:
    """Which index serves ``sink``: duck-typed on what each sink publishes (its tables and engine,
    its database, its CouchDB client, its Parquet files), so browse imports a store's client library
    only when the pipeline uses that store."""
    if hasattr(sink, "tables") and hasattr(sink, "engine"):
        return "sql"
    if hasattr(sink, "db") and hasattr(sink.config, "collection_prefix"):
        return "mongo"
    if hasattr(getattr(sink, "client", None), "fetch") and hasattr(sink.config, "database"):
        return "couch"
    if hasattr(sink, "files") and hasattr(sink, "partition_dir") and hasattr(sink, "fs"):
        return "lake"
    return None


#: Without ``--sink``: the store whose searches cost least (indexed SQL and MongoDB, then CouchDB's
#: Mango, then the lake, which reads files), the pipeline's order among equals.
PREFERENCE = ("sql", "mongo", "couch", "lake")


def index_for(sinks: dict[str, Any], wanted: str | None) -> tuple[str, Any]:
    """The record sink browse queries: ``--sink``, or the one it searches best (:data:`PREFERENCE`)."""
    found = [(name, kind) for name in ([wanted] if wanted else list(sinks))
             if name in sinks and (kind := _kind(sinks[name])) is not None]
    if found:
        name, kind = min(found, key=lambda nk: PREFERENCE.index(nk[1]))
        sink = sinks[name]
        if kind == "sql":
            from .sql_index import SqlArchiveIndex

            return name, SqlArchiveIndex(sink)
        if kind == "mongo":
            from .mongo_index import MongoArchiveIndex

            return name, MongoArchiveIndex(sink)
        if kind == "couch":
            from .couch_index import CouchArchiveIndex

            return name, CouchArchiveIndex(sink)
        from .lake_index import LakeArchiveIndex

        return name, LakeArchiveIndex(sink)
    known = ", ".join(sinks) or "none"
    raise rcetl.ConfigError(
        f"no record sink browse can search{f' named {wanted!r}' if wanted else ''} (record sinks: {known})",
        hint="browse searches SQL (sqlite, mysql, postgres, mssql, sql), mongodb, couchdb and lake record "
             "sinks; add one to the pipeline or name it with --sink")


def browse(
    pipeline_file: Path = typer.Argument(..., help="The pipeline file whose archive to browse.", show_default=False),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; anything but loopback needs "
                             f"{TOKEN_ENV} or {USER_ENV}/{PASSWORD_ENV} in the environment."),
    port: int = typer.Option(8765, "--port", help="Port to listen on (0: any free port)."),
    sink: str | None = typer.Option(None, "--sink", help="The record sink to search (default: SQL, else MongoDB, CouchDB, lake)."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in the default web browser."),
) -> None:
    """Search, hear and read the archive in a local web page (read-only), and see coverage per day."""
    from werkzeug.serving import make_server

    from .web import BrowseApp

    try:
        creds = credentials_for(host)
        with rcetl.open_archive(pipeline_file) as archive:
            name, index = index_for(archive.record_sinks, sink)
            app = BrowseApp(name=archive.name, index=index, blob_sinks=archive.blob_sinks, state=archive.state,
                            reports_dir=reports_dir(archive.pipeline), credentials=creds)
            try:
                server = make_server(host, port, app, threaded=True)
            except (OSError, SystemExit) as exc:
                raise rcetl.ConfigError(f"cannot listen on {host}:{port}: {exc}",
                                        hint="pick another --port (0 takes any free one)") from None
            shown = host if ":" not in host else f"[{host}]"
            typer.echo(f"rcetl browse: {archive.name} (searching sink {name!r}) on http://{shown}:{server.port}/ "
                       f"- Ctrl-C to stop", err=True)
            if open_browser:
                import webbrowser

                webbrowser.open(f"http://{shown}:{server.port}/")
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
            finally:
                server.server_close()
    except rcetl.RcetlError as exc:
        typer.echo(f"error: {rcetl.redact(str(exc))}", err=True)
        hint = getattr(exc, "hint", None)
        if hint:
            typer.echo(f"  hint: {hint}", err=True)
        raise typer.Exit(2) from None


