"""The directory source: one snapshot of the extension list per run, the API's JSON unchanged,
keyed so that a later snapshot never overwrites an earlier one."""

from __future__ import annotations

import rcetl
from rcetl.plugins.sources import directory
from rcetl.plugins.sources.ringcentral.durations import format_instant
from rcetl.sandbox import Sandbox

from .conftest import connect, drain, make_ctx, stream_of


def test_each_run_archives_a_snapshot_of_every_extension(tmp_path):
    with Sandbox(seed=6, size="tiny", limits=False) as sb:
        ctx = make_ctx(tmp_path)
        conn = connect(sb, ctx)
        try:
            served = {e["id"]: e for e in sb.ground_truth()["accounts"][0]["extensions"]}
            records, checkpoints = drain(stream_of(directory, ctx, conn))
            assert {r.data["id"] for r in records} == set(served) and len(records) == len(served)
            for r in records:
                assert r.data == served[r.data["id"]], "the API's JSON unchanged"
                assert r.key == directory.snapshot_key(r.data["id"], r.occurred_at)
                assert r.account == sb.data[0].account_id and r.stream == "directory"
            (snapshot,) = {r.occurred_at for r in records}
            assert checkpoints == {"": format_instant(snapshot)}
            assert sb.counters()["by_endpoint"]["extension-list"] == 1, "one page for all extensions"

            again, _ = drain(stream_of(directory, ctx, conn, min_interval="1d"), checkpoints=checkpoints)
            assert again == [], "a snapshot younger than min_interval is not taken again"
            forced, _ = drain(stream_of(directory, ctx, conn, min_interval="1d"), rcetl.RunWindow(full_refresh=True),
                              checkpoints)
            assert len(forced) == len(served)
        finally:
            conn.close()


def test_pages_through_a_small_per_page(tmp_path):
    with Sandbox(seed=6, size="small", limits=False) as sb:
        ctx = make_ctx(tmp_path)
        conn = connect(sb, ctx)
        try:
            records, _ = drain(stream_of(directory, ctx, conn, per_page=5))
            assert [r.data["id"] for r in records] == [e.id for e in sb.data[0].extensions]
            assert sb.counters()["by_endpoint"]["extension-list"] == -(-len(records) // 5)
        finally:
            conn.close()


def test_plan_makes_no_request(tmp_path):
    with Sandbox(seed=6, size="tiny") as sb:
        ctx = make_ctx(tmp_path)
        conn = connect(sb, ctx)
        plan = stream_of(directory, ctx, conn).plan("", None, rcetl.RunWindow())
        assert plan.requests["Medium"] == 1 and not conn.is_open
        assert sb.counters()["requests"] == 0
