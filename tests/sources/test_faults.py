"""With the sandbox injecting 5xx, dropped downloads and 429 storms, reads still end complete and byte-exact."""

from __future__ import annotations

from collections import Counter

import pytest

from .conftest import call_log, connect, download_all, drain, make_ctx, message_store, recording, stream_of
from .test_call_log_recording import expected_blobs, truth_of


@pytest.mark.parametrize("faults", ["5xx=0.1,drop=0.2,429=0.03", "drop=0.5"])
def test_faulty_server_complete_and_byte_exact(sandbox_factory, tmp_path, faults: str) -> None:
    sb = sandbox_factory(time_scale=600.0, faults=faults)
    ctx = make_ctx(tmp_path)
    conn = connect(sb, ctx, max_retries=12)
    try:
        calls, _ = drain(stream_of(call_log, ctx, conn))
        rec_stream = stream_of(recording, ctx, conn)
        recs = [r for c in calls for r in rec_stream.derive(c)]
        messages, _ = drain(stream_of(message_store, ctx, conn))
        msg_stream = stream_of(message_store, ctx, conn)
        truth = truth_of(sb)
        assert Counter(r.key for r in calls) == Counter(c["id"] for c in truth["call_log"])
        assert {r.key for r in messages} == {m["id"] for m in truth["messages"]}
        assert download_all(rec_stream, recs, tmp_path / "r") == expected_blobs(truth, "recording", "recordings")
        unique = {r.key: r for r in messages}.values()
        assert download_all(msg_stream, unique, tmp_path / "a") == expected_blobs(truth, "attachment", "attachments")
        statuses = sb.counters()["by_status"]
        assert any(s.startswith("5") for s in statuses) or "drop" in faults
    finally:
        conn.close()
