"""Helpers for the end-to-end sink tests: the sandbox's default data set, pipeline files written to a
test's folder, runs through the real engine and CLI, the stores' test servers (from
tests/servers.py), dumps of what a store holds, and an S3 proxy that corrupts uploads.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import rcetl
from rcetl.sandbox import Sandbox
from tests.servers import (
    FakeDropbox,
    ForwardingProxy,
    drop_tables,
    dropbox_server,
    gcs_server,
    moto_server,
    unique,
)

__all__ = ["FakeDropbox", "drop_tables", "dropbox_server", "gcs_server", "moto_server", "unique"]

ROOT = Path(__file__).resolve().parents[2]
RCETL = [sys.executable, "-m", "rcetl.cli.main"]
# The demo's data set (pipelines/demo.yaml): seed 42, size small. Limits off and a fast clock so the
# client's own budget (Heavy 10/min at time_scale 1) does not pace a test.
SEED, SIZE, TIME_SCALE = 42, "small", 1000.0


def default_sandbox(**options: Any) -> Sandbox:
    return Sandbox(seed=SEED, size=SIZE, limits=False, time_scale=TIME_SCALE, **options)


# --- pipeline files and runs ---------------------------------------------------------------------


def write_pipeline(folder: Path, sb: Sandbox, sinks: dict[str, dict[str, Any]], name: str = "e2e") -> Path:
    """A pipeline file reading the sandbox's three streams into ``sinks`` (JSON is YAML)."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "pipeline": name,
        "ringcentral": {"server": sb.server, "media_server": sb.media_server, "client_id": sb.client_id,
                        "client_secret": sb.client_secret, "jwt": sb.jwt, "time_scale": sb.time_scale},
        "state": f"sqlite:///{folder / 'state.db'}",
        "spool_dir": str(folder / "spool"),
        "sources": {"call-log": {"level": "account", "view": "Detailed"}, "recording": {}, "message-store": {}},
        "sinks": sinks,
        "executor": {"workers": 4, "downloads": 8},
    }
    path = folder / "pipeline.yaml"
    path.write_text(json.dumps(doc, indent=2))
    return path


def run(path: Path, *, full_refresh: bool = False, retry_now: bool = False) -> rcetl.RunSummary:
    """One run of the pipeline file through the real engine (what `rcetl run` does)."""
    from rcetl.config import load_pipeline
    from rcetl.engine import run_pipeline
    from rcetl.registry import get_plugin_manager

    pm = get_plugin_manager()
    return run_pipeline(load_pipeline(path, pm=pm), pm, window=rcetl.RunWindow(full_refresh=full_refresh),
                        retry_now=retry_now)


def cli(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RCETL, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RCETL_HOME": str(home), **(env or {})})


def verify_clean(path: Path, home: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`rcetl verify FILE --json` exits 0 and reports no problem; returns the report."""
    done = cli("verify", str(path), "--json", *extra, home=home, env=env)
    assert done.returncode == 0, f"verify exit {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["problems"] == 0, report["findings"][:10]
    return report


def files_uploaded(summary: rcetl.RunSummary, sink: str) -> int:
    stats = summary.sinks.get(sink)
    return stats.files if stats is not None else 0


@dataclass
class Opened:
    """Sinks of a pipeline file opened on the same storage, closed together."""

    sinks: list[Any] = field(default_factory=list)

    def open(self, path: Path, name: str) -> Any:
        from rcetl.config import load_pipeline
        from rcetl.registry import get_plugin_manager

        pipeline = load_pipeline(path, pm=get_plugin_manager())
        conf = next(s for s in pipeline.sinks if s.name == name)
        ctx = rcetl.RunContext.standalone(path.parent, pipeline.name)
        sink = conf.build(ctx)
        sink.open()
        self.sinks.append(sink)
        return sink

    def close(self) -> None:
        while self.sinks:
            with contextlib.suppress(Exception):
                self.sinks.pop().close()


def failed_items(path: Path) -> list[Any]:
    from rcetl.config import load_pipeline
    from rcetl.registry import get_plugin_manager
    from rcetl.state import StateStore

    pipeline = load_pipeline(path, pm=get_plugin_manager())
    store = StateStore(pipeline.state_url)
    try:
        return store.failed(pipeline.name)
    finally:
        with contextlib.suppress(Exception):
            store.close()


# --- changing data at the source through its REST API ---------------------------------------------


class SandboxAdmin:
    """Deletes through the sandbox's REST API, as any RingCentral client (or `rcetl purge`) would."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        form = urllib.parse.urlencode({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                       "assertion": sb.jwt}).encode()
        request = urllib.request.Request(f"{sb.server}/restapi/oauth/token", data=form, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        import base64

        basic = base64.b64encode(f"{sb.client_id}:{sb.client_secret}".encode()).decode()
        request.add_header("Authorization", f"Basic {basic}")
        with urllib.request.urlopen(request, timeout=30) as resp:
            self.token = json.loads(resp.read())["access_token"]

    def delete(self, path: str) -> int:
        request = urllib.request.Request(f"{self.sb.server}/restapi/v1.0{path}", method="DELETE")
        request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status

    def delete_message(self, extension_id: int, message_id: int) -> None:
        """Alive -> Deleted (the message stays, with ``availability: Deleted``)."""
        assert self.delete(f"/account/~/extension/{extension_id}/message-store/{message_id}") == 204

    def delete_calls_before(self, extension_id: int, date_to: str) -> None:
        """Every call of the extension that started before ``date_to`` is marked deleted."""
        query = urllib.parse.urlencode({"dateTo": date_to})
        assert self.delete(f"/account/~/extension/{extension_id}/call-log?{query}") == 204


# --- database dumps --------------------------------------------------------------------------------


def dump_sql(engine: Any, prefix: str, schema: str | None = None) -> dict[str, list[tuple]]:
    """Every row of every table of the archive (``prefix``), all columns, ordered by primary key;
    on PostgreSQL each row also carries its ``xmin`` (the transaction that last wrote it)."""
    import sqlalchemy as sa

    meta = sa.MetaData()
    meta.reflect(engine, schema=schema, only=lambda name, _: name.startswith(prefix))
    out: dict[str, list[tuple]] = {}
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            columns = list(table.columns)
            if conn.dialect.name == "postgresql":
                columns.append(sa.literal_column("xmin::text").label("_xmin"))
            order = list(table.primary_key.columns) or list(table.columns)
            rows = conn.execute(sa.select(*columns).order_by(*order)).all()
            out[table.name.removeprefix(prefix)] = [tuple(_plain(v) for v in row) for row in rows]
    assert out, f"no table with the prefix {prefix!r}"
    return out


def _plain(value: Any) -> Any:
    # JSON columns come back as text on SQLite/MySQL and as objects on PostgreSQL: compare parsed.
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return value


def dump_mongo(db: Any) -> dict[str, list[dict[str, Any]]]:
    """Every document of every collection, ordered by ``_id``."""
    return {name: list(db[name].find().sort("_id", 1)) for name in sorted(db.list_collection_names())}


def diff_rows(before: dict[str, list], after: dict[str, list]) -> dict[str, int]:
    """How many rows of each table differ (by position; the tables must keep their row counts)."""
    assert before.keys() == after.keys(), (before.keys(), after.keys())
    out = {}
    for table in before:
        assert len(before[table]) == len(after[table]), f"{table}: {len(before[table])} -> {len(after[table])} rows"
        changed = sum(1 for a, b in zip(before[table], after[table], strict=True) if a != b)
        if changed:
            out[table] = changed
    return out


# --- stores ---------------------------------------------------------------------------------------


# --- an S3 proxy that corrupts uploads ------------------------------------------------------------


class CorruptingS3Proxy(ForwardingProxy):
    """An HTTP proxy in front of an S3 server that flips one byte of the body of every PUT whose key
    passes ``corrupt`` (while ``active``) and forwards everything else untouched.

    moto stores whatever body it gets and reports back the ``x-amz-checksum-sha256`` the client sent
    without checking it (real S3 answers BadDigest). So the proxy also rewrites the request's checksum
    headers to the digest of the altered body: the store then behaves as a store that corrupts what it
    was sent and reports the checksum of what it really holds. ``consistent=False`` forwards the
    client's checksums as sent."""

    def __init__(self, upstream: str, corrupt: Callable[[str], bool], consistent: bool = True) -> None:
        super().__init__(upstream)
        self.corrupt = corrupt
        self.consistent = consistent
        self.active = True
        self.corrupted: list[str] = []
        self.requests: list[tuple[str, str]] = []

    def intercept(self, request: BaseHTTPRequestHandler, body: bytes, headers: dict[str, str]
                  ) -> tuple[bytes, dict[str, str]]:
        key = urllib.parse.unquote(urllib.parse.urlsplit(request.path).path)
        with self.lock:
            self.requests.append((request.command, key))
            flip = request.command == "PUT" and self.active and bool(body) and self.corrupt(key)
            if flip:
                self.corrupted.append(key)
        return _corrupt_put(body, headers, self.consistent) if flip else (body, headers)


def _corrupt_put(body: bytes, headers: dict[str, str], consistent: bool) -> tuple[bytes, dict[str, str]]:
    """The body with its first byte flipped, and (``consistent``) checksum headers that match it."""
    import base64
    import hashlib

    lower = {k.lower(): k for k in headers}
    payload = headers.get(lower.get("x-amz-content-sha256", ""), "")
    assert "aws-chunked" not in headers.get(lower.get("content-encoding", ""), "") and \
        not payload.upper().startswith("STREAMING-"), "aws-chunked upload: teach the proxy its framing"
    body = bytes([body[0] ^ 0x01]) + body[1:]
    if consistent:
        digest = hashlib.sha256(body)
        if "x-amz-checksum-sha256" in lower:
            headers[lower["x-amz-checksum-sha256"]] = base64.b64encode(digest.digest()).decode()
        if len(payload) == 64:  # a signed payload's hex SHA-256 (moto does not check the signature)
            headers[lower["x-amz-content-sha256"]] = digest.hexdigest()
        if "content-md5" in lower:
            headers[lower["content-md5"]] = base64.b64encode(hashlib.md5(body).digest()).decode()
    return body, headers
