"""Call-log and recording streams against the sandbox: complete, exactly once, byte-exact, within budget."""

from __future__ import annotations

import math
from collections import Counter

import rcetl
from rcetl.plugins.sources.ringcentral import call_log_listing
from rcetl.plugins.sources.ringcentral.durations import format_instant, now_utc

from .conftest import call_log, download_all, drain, recording, stream_of


def truth_of(sb) -> dict:
    return sb.ground_truth()["accounts"][0]


def expected_blobs(truth: dict, kind: str, items: str) -> dict:
    """blob id -> (size, sha256) or "gone". RingCentral numbers attachments per message, so an
    attachment is named by its message id and its own id; a recording id is unique by itself."""
    def blob_id(r: dict) -> str:
        return f"{kind}-{r['message_id']}-{r['id']}" if kind == "attachment" else f"{kind}-{r['id']}"

    return {blob_id(r): (r["size"], r["sha256"]) if r["available"] else "gone" for r in truth[items]}


def test_every_call_and_recording_exactly_once(connected, tmp_path) -> None:
    sb, ctx, conn = connected()
    calls, checkpoints = drain(stream_of(call_log, ctx, conn))
    rec_stream = stream_of(recording, ctx, conn)
    recs = [r for c in calls for r in rec_stream.derive(c)]
    truth = truth_of(sb)
    assert Counter(r.key for r in calls) == Counter(c["id"] for c in truth["call_log"])
    assert all(isinstance(r.key, str) and r.data["id"] == r.key for r in calls)
    assert all(r.account == truth["account_id"] and r.occurred_at is not None for r in calls)
    assert {r.key for r in calls if r.deleted} == {c["id"] for c in truth["call_log"] if c.get("deleted")}
    assert Counter(r.key for r in recs) == Counter(r["id"] for r in truth["recordings"])
    assert download_all(rec_stream, recs, tmp_path / "dl") == expected_blobs(truth, "recording", "recordings")
    ref = recs[0].blobs[0]
    assert ref.kind == "recording" and ref.blob_id == f"recording-{recs[0].key}"
    assert set(ref.variables) >= {"id", "date", "extension", "kind", "ext", "account", "call_id", "type"}
    assert set(checkpoints) == {""}
    counters = sb.counters()
    assert counters["throttled"] == 0
    # Heavy: one download per recording plus the list pages (one per window here): no metadata GETs.
    assert "recording" not in counters["by_endpoint"]


def test_recording_read_lists_the_call_log_itself_when_alone(connected) -> None:
    sb, ctx, conn = connected()
    recs, checkpoints = drain(stream_of(recording, ctx, conn))
    truth = truth_of(sb)
    assert Counter(r.key for r in recs) == Counter(r["id"] for r in truth["recordings"])
    assert checkpoints[""]


def test_several_hundred_recordings_within_heavy_budget_and_no_429(connected, tmp_path) -> None:
    sb, ctx, conn = connected(size="small", time_scale=600.0)
    sb.add_calls(400, recordings=300)
    cl = stream_of(call_log, ctx, conn)
    run_start = now_utc()
    calls, _ = drain(cl)
    rec_stream = stream_of(recording, ctx, conn)
    recs = [r for c in calls for r in rec_stream.derive(c)]
    truth = truth_of(sb)
    # The sandbox's add_calls can start a transferred call's follow-up record after "now"; no
    # list up to now can hold it (nor would RingCentral's), so the truth is what had started.
    started = {c["id"] for c in truth["call_log"] if c["startTime"] <= format_instant(run_start)}
    truth["recordings"] = [r for r in truth["recordings"] if r["call_id"] in started]
    assert len(recs) >= 250
    assert download_all(rec_stream, recs, tmp_path / "dl") == expected_blobs(truth, "recording", "recordings")
    counters = sb.counters()
    windows = len(call_log_listing.windows(cl.config, None, rcetl.RunWindow(), now=run_start))
    assert counters["throttled"] == 0, counters
    assert counters["by_group"]["Heavy"] <= len(recs) + math.ceil(len(calls) / 1000) + windows, counters


def test_incremental_run_reads_the_tail_and_catches_new_calls(connected) -> None:
    sb, ctx, conn = connected()
    stream = stream_of(call_log, ctx, conn)
    first, checkpoints = drain(stream)
    before = sb.counters()["by_endpoint"].get("account-call-log", 0)
    added = sb.add_calls(5, recordings=2)
    second, checkpoints2 = drain(stream, checkpoints=checkpoints)
    assert {c["id"] for c in added} <= {r.key for r in second}
    # One window (checkpoint - overlap .. now), one page: not a second backfill.
    assert sb.counters()["by_endpoint"]["account-call-log"] - before == 1
    assert checkpoints2[""]["position"] > checkpoints[""]["position"]
    # ...plus one call-log sync, which reports deletions of older records (test_deleted_at_source).
    assert sb.counters()["by_endpoint"]["account-call-log-sync"] == 2  # the first run's FSync, this ISync
    assert checkpoints2[""]["syncToken"] != checkpoints[""]["syncToken"]


def test_explicit_windows_always_name_both_dates(connected) -> None:
    sb, ctx, conn = connected()
    seen = []
    client = conn.client
    original = client.get_json

    def spy(url, params=None, **kw):
        seen.append((url, dict(params or {})))
        return original(url, params, **kw)

    client.get_json = spy  # type: ignore[method-assign]
    drain(stream_of(call_log, ctx, conn, window="90d"))
    firsts = [p for u, p in seen if u.endswith("/call-log")]
    assert firsts and all("dateFrom" in p and "dateTo" in p and p["perPage"] == 1000 for p in firsts)
    assert all(p["showDeleted"] == "true" for p in firsts)
    starts = [p["dateFrom"] for p in firsts]
    assert starts == sorted(starts)  # oldest window first
