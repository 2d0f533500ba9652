"""Call-log records deleted at RingCentral after they were archived are marked deleted by the next
incremental run (issue 15, point 4), whatever their age (the overlap window covers hours only);
the dry run says what finding them costs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import rcetl

from .conftest import call_log, connect, make_ctx, stream_of
from .runs import archive_of


def _delete_older_calls(sb, tmp_path: Path) -> set[str]:  # noqa: ANN001
    """DELETE /extension/{id}/call-log?dateTo= through the API, as an admin would: every call of the
    busiest extension older than its median call. Returns the ids RingCentral now reports deleted."""
    calls = sb.ground_truth()["accounts"][0]["call_log"]
    extension = Counter(c["extension"]["id"] for c in calls if c.get("extension")).most_common(1)[0][0]
    starts = sorted(c["startTime"] for c in calls if (c.get("extension") or {}).get("id") == extension)
    conn = connect(sb, make_ctx(tmp_path / "admin"))
    try:
        conn.client.request("DELETE", conn.account_path(f"/extension/{extension}/call-log"),
                            params={"dateTo": starts[len(starts) // 2]})
    finally:
        conn.close()
    return {c["id"] for c in sb.ground_truth()["accounts"][0]["call_log"] if c.get("deleted")}


def test_an_incremental_run_marks_every_call_deleted_at_the_source(sandbox_factory, tmp_path: Path) -> None:
    sb = sandbox_factory(time_scale=600.0)
    archive = archive_of(sb, tmp_path / "a")
    assert archive.run().status == "ok"
    deleted = _delete_older_calls(sb, tmp_path)
    assert deleted and sb.counters()["deleted"]["calls"] == len(deleted)
    heavy_before = sb.counters()["by_group"].get("Heavy", 0)

    later = archive.run()

    assert later.status == "ok", later.errors
    db, files = archive.sinks()
    try:
        entries = {e.key: e for e in db.archived("call-log")}
    finally:
        db.close()
        files.close()
    marked = {key for key, e in entries.items() if e.deleted}
    assert marked == deleted, f"{len(deleted - marked)} deleted calls not marked, {len(marked - deleted)} wrongly"
    # One sync request and the overlap's window: no re-listing of the whole call log.
    assert sb.counters()["by_group"].get("Heavy", 0) - heavy_before <= 3
    archive.check_complete(sb)


def test_an_archive_without_a_sync_token_looks_for_deletions_once(sandbox_factory, tmp_path: Path) -> None:
    """A call-log checkpoint written before tokens were kept (a bare instant): the next run lists the
    retained call log again with deleted records, then keeps a token like any other run."""
    sb = sandbox_factory(time_scale=600.0)
    archive = archive_of(sb, tmp_path / "a")
    assert archive.run().status == "ok"
    from rcetl.state import StateStore

    store = StateStore(f"sqlite:///{archive.folder / 'state.db'}")
    try:
        [(source, value)] = [(k, v) for k, v in _checkpoints(store, archive.path.stem).items() if k[1] == "call-log"]
        store.put_checkpoint(archive.path.stem, source[0], "call-log", source[2], value["position"])
    finally:
        store.close()
    deleted = _delete_older_calls(sb, tmp_path)

    later = archive.run()

    assert later.status == "ok", later.errors
    db, files = archive.sinks()
    try:
        assert {e.key for e in db.archived("call-log") if e.deleted} == deleted
    finally:
        db.close()
        files.close()


def _checkpoints(store, pipeline: str) -> dict:  # noqa: ANN001
    return {(row.source, row.stream, row.partition): row.value for row in store.checkpoints(pipeline)}


def test_the_dry_run_says_what_finding_deletions_costs(tmp_path: Path) -> None:
    from .test_plan_and_embedded import unreachable_connection

    ctx = make_ctx(tmp_path)
    conn = unreachable_connection(ctx)
    stream = stream_of(call_log, ctx, conn)
    recent = (rcetl.RunWindow(),)
    synced = stream.plan("", {"position": "2026-12-05T10:00:00Z", "syncToken": "t"}, *recent)
    assert "call-log sync for records deleted at RingCentral" in synced.description
    assert synced.requests["Heavy"] >= 2  # the window's page(s) and the sync
    legacy = stream.plan("", "2026-12-05T10:00:00Z", *recent)
    assert legacy.requests["Heavy"] > synced.requests["Heavy"]
    assert any("listed once more with deleted records" in w for w in legacy.warnings)


def test_a_server_without_call_log_sync_is_still_listed_and_never_relisted(sandbox_factory, tmp_path: Path,
                                                                           monkeypatch) -> None:
    """Mock: the sandbox serves call-log-sync, so a server that answers it 404 is simulated by making
    the stream's sync request fail as such a server's would. Listing goes on; no re-listing follows."""
    from rcetl.plugins.sources.ringcentral.api_errors import ApiError

    from .conftest import drain

    sb = sandbox_factory(time_scale=600.0)
    conn = connect(sb, make_ctx(tmp_path))
    try:
        stream = stream_of(call_log, make_ctx(tmp_path), conn)

        def no_sync(partition, params):  # noqa: ANN001, ANN202
            raise ApiError("GET", "https://x/restapi/v1.0/account/~/call-log-sync", 404,
                           {"errorCode": "CMN-102", "message": "Resource not found"})

        monkeypatch.setattr(stream, "_sync", no_sync)
        records, checkpoints = drain(stream)
        assert {r.key for r in records} == {c["id"] for c in sb.ground_truth()["accounts"][0]["call_log"]}
        assert checkpoints[""]["sync"] == "unavailable" and checkpoints[""]["syncToken"] is None
        pages = sb.counters()["by_endpoint"]["account-call-log"]
        again, _ = drain(stream, checkpoints=checkpoints)
        assert sb.counters()["by_endpoint"]["account-call-log"] - pages == 1  # the overlap only
    finally:
        conn.close()
