"""Message-store stream against the sandbox: every message and attachment once, deletions through
ISync, refused sync tokens, and hostile content passed through exactly."""

from __future__ import annotations

from collections import Counter

import requests

from .conftest import download_all, drain, make_ctx, message_store, stream_of
from .test_call_log_recording import expected_blobs, truth_of


def test_every_message_and_attachment_exactly_once(connected, tmp_path) -> None:
    sb, ctx, conn = connected()
    stream = stream_of(message_store, ctx, conn)
    records, checkpoints = drain(stream)
    truth = truth_of(sb)
    # FSync and the dated list can both return a recent message: the engine upserts by key, so
    # "once" means every key present and each record the same data.
    assert set(Counter(r.key for r in records)) == {m["id"] for m in truth["messages"]}
    unique = {r.key: r for r in records}
    assert download_all(stream, unique.values(), tmp_path / "dl") == expected_blobs(truth, "attachment", "attachments")
    assert all(isinstance(v.get("syncToken"), str) and "backfill" not in v for v in checkpoints.values())
    assert sb.counters()["throttled"] == 0


def test_isync_reports_deletions_with_whole_messages(connected) -> None:
    sb, ctx, conn = connected()
    stream = stream_of(message_store, ctx, conn)
    records, checkpoints = drain(stream)
    alive = [r for r in records if r.data.get("availability") == "Alive"]
    victim, purged = alive[0], alive[1]
    token = conn.client.tokens.access_token()
    for rec, purge in ((victim, "false"), (purged, "true")):
        ext = rec.data["extensionId"]
        url = conn.account_path(f"/extension/{ext}/message-store/{rec.key}")
        assert requests.delete(url, params={"purge": purge}, headers={"Authorization": f"Bearer {token}"}).status_code == 204
    before = sb.counters()["by_endpoint"].get("message-list", 0)
    changed, _ = drain(stream, checkpoints=checkpoints)
    by_key = {r.key: r for r in changed}
    assert by_key[victim.key].deleted and by_key[victim.key].data["availability"] == "Deleted"
    assert by_key[purged.key].deleted and by_key[purged.key].data["availability"] == "Purged"
    # Batch GET restored the whole message, not sync's {id, availability} stub.
    assert by_key[victim.key].data.get("creationTime") == victim.data["creationTime"]
    assert sb.counters()["by_endpoint"].get("message-list", 0) == before  # no re-listing


def test_refused_sync_token_falls_back_without_full_backfill(connected) -> None:
    sb, ctx, conn = connected()
    stream = stream_of(message_store, ctx, conn, extensions=[sb.ground_truth()["accounts"][0]["extensions"][0]["id"]])
    _, checkpoints = drain(stream)
    (partition,) = checkpoints
    broken = {partition: {**checkpoints[partition], "syncToken": "garbage"}}
    records, after = drain(stream, checkpoints=broken)
    assert after[partition]["syncToken"] not in ("garbage", None)


def test_hostile_content_comes_through_exactly(connected) -> None:
    sb, ctx, conn = connected()
    records, _ = drain(stream_of(message_store, ctx, conn))
    truth = truth_of(sb)
    by_key = {r.key: r for r in records}
    big = [m["id"] for m in truth["messages"] if m["id"] > 2**53]
    assert big, "the sandbox data set should hold ids above 2^53"
    for mid in big:
        rec = by_key[mid]
        assert type(rec.key) is int and rec.key == mid and rec.data["id"] == mid
    refs = [b for r in records for b in r.blobs]
    names = {b.variables.get("name") for b in refs}
    assert "../../etc/passwd" in names  # passed on verbatim: the blob sinks sanitise names
    # Ids stay exact ints (never a float); the key variable "id" joins message and attachment id.
    assert all(type(b.variables["attachment_id"]) is int and type(b.variables["message_id"]) is int for b in refs)
    assert all(b.variables["id"] == f"{b.variables['message_id']}-{b.variables['attachment_id']}" for b in refs)
    assert any(ord(c) < 32 for r in records for c in str(r.data.get("from", {}).get("name", "")))
    conversation = [r for r in records if "conversationId" in r.data]
    assert all(type(r.data["conversationId"]) is int for r in conversation)
    # An optional field missing from the API stays missing (nothing invented, nothing dropped).
    assert any("fileName" not in a for r in records for a in r.data.get("attachments", []))


def test_a_dry_run_counts_a_medium_download_per_attachment_but_none_for_purged_messages(tmp_path) -> None:
    from .test_plan_and_embedded import unreachable_connection

    ctx = make_ctx(tmp_path)
    stream = stream_of(message_store, ctx, unreachable_connection(ctx))
    attachment = {"id": 1, "uri": "https://platform.ringcentral.com/a/1", "contentType": "image/png", "size": 10}
    alive = message_store.message_record({"id": 7, "attachments": [attachment]}, "1", "2")
    purged = message_store.message_record({"id": 8, "availability": "Purged", "attachments": [attachment]}, "1", "2")
    assert [stream.planned_download(ref) for ref in alive.blobs] == ["Medium"]
    assert [stream.planned_download(ref) for ref in purged.blobs] == [None]  # download() asks nothing either


def test_a_first_run_lists_whole_backfill_windows_however_the_clock_moves(connected, monkeypatch) -> None:
    """The default backfill (3 years in 365-day windows) is 3 list requests per mailbox, also when the
    clock moves between the run's start and the FSync (it once reached back from an earlier clock
    reading than the backfill's end, and a millisecond between them made a fourth, empty window)."""
    from datetime import timedelta

    from rcetl.plugins.sources import message_store as ms

    sb, ctx, conn = connected()
    real = ms.now_utc
    ticks = iter(range(1, 1_000_000))
    monkeypatch.setattr(ms, "now_utc", lambda: real() + timedelta(milliseconds=7 * next(ticks)))
    box = sb.ground_truth()["accounts"][0]["extensions"][0]["id"]
    stream = stream_of(message_store, ctx, conn, extensions=[box])
    drain(stream)
    assert sb.counters()["by_endpoint"].get("message-list", 0) == 3
