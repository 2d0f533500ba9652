"""Dry-run plans make no request; ``server: sandbox`` starts and stops the embedded simulator."""

from __future__ import annotations

from datetime import timedelta

import rcetl
from rcetl.plugins.sources.ringcentral import plugin
from rcetl.plugins.sources.ringcentral.durations import now_utc

from .conftest import SOURCES, drain, make_ctx, stream_of


def unreachable_connection(ctx: rcetl.RunContext):
    (spec,) = plugin.rcetl_connections()
    config = spec.config(server="http://127.0.0.1:9", client_id="id", client_secret="secret-x", jwt="jwt-xyz")
    return spec.factory("rc", config, ctx)


def test_plans_make_no_request(tmp_path) -> None:
    ctx = make_ctx(tmp_path)
    conn = unreachable_connection(ctx)  # any request would fail: nothing listens on port 9
    window = rcetl.RunWindow()
    plans = {name: stream_of(module, ctx, conn).plan("", None, window) for name, module in SOURCES.items()}
    assert not conn.is_open
    # A first call-log run: 13 months in 30-day windows, one Heavy page per window at least, and
    # the FSync that starts the call-log sync (deletions are found by the next runs' ISync).
    assert plans["call-log"].requests["Heavy"] == 14 + 1
    rec = plans["recording"]
    assert any("90-day retention" in w for w in rec.warnings) and any("age out" in w for w in rec.warnings)
    assert plans["message-store"].requests["Light"] >= 3
    # Incremental: a checkpoint an hour old is one window.
    recent = (now_utc() - timedelta(hours=1)).isoformat()
    synced = {"position": recent, "syncToken": "t"}
    assert stream_of(SOURCES["call-log"], ctx, conn).plan("", synced, window).requests["Heavy"] == 1 + 1  # + ISync
    synced = {"syncToken": "t", "identity": SOURCES["message-store"].IDENTITY}
    assert stream_of(SOURCES["message-store"], ctx, conn).plan("", synced, window).requests["Light"] == 1
    # A checkpoint written when attachments were named by their id alone plans the mailbox's re-listing.
    assert stream_of(SOURCES["message-store"], ctx, conn).plan("", {"syncToken": "t"}, window).requests["Light"] > 1


def test_embedded_sandbox_connection(tmp_path) -> None:
    from rcetl.sandbox import plugin as sandbox_plugin

    (server,) = sandbox_plugin.rcetl_embedded_servers()
    ctx = make_ctx(tmp_path)
    ctx.embedded_servers = {"sandbox": server}
    (spec,) = plugin.rcetl_connections()
    conn = spec.factory("rc", spec.config(server="sandbox", sandbox={"seed": 2, "size": "tiny", "time_scale": 120}), ctx)
    try:
        records, _ = drain(stream_of(SOURCES["call-log"], ctx, conn))
        assert records and conn.time_scale == 120
    finally:
        conn.close()
    assert not conn.is_open
