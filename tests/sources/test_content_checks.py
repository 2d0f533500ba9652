"""Downloads answered with something other than the file (issue 15, point 2).

The sandbox answers the first downloads of a route with a login page (200 text/html), an API error
object (200 application/json), an empty 200, or a body cut short after an honest Content-Length.
None of it may be stored in any sink or counted archived: each is a failed item whose message says
what was expected, what came and its first bytes, and a later healthy run completes the archive
byte for byte.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from .runs import archive_of

FAULTED = 2  # the first two downloads of the route get the fault

# What the failed item's message must say, per fault: what was expected and what came.
MESSAGES = {
    ("html", "recording-content"): ["content check failed", "expected audio/*", "text/html", "<!DOCTYPE html>"],
    ("json200", "recording-content"): ["content check failed", "expected audio/*", "application/json",
                                       "errorCode"],
    ("empty", "recording-content"): ["content check failed", "the body is empty"],
    ("html", "attachment-content"): ["content check failed", "text/html", "<!DOCTYPE html>"],
    ("json200", "attachment-content"): ["content check failed", "application/json", "errorCode"],
    ("empty", "attachment-content"): ["content check failed", "the body is empty"],
    # A cut body is caught by its Content-Length: with no retry allowed it fails, never stored.
    ("truncate", "recording-content"): ["recording"],
    ("truncate", "attachment-content"): ["attachment"],
}


def _digests(paths: list[Path]) -> set[str]:
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.mark.parametrize(("fault", "route"), list(MESSAGES))
def test_a_body_that_is_not_the_file_is_never_stored_and_a_later_run_completes(
        sandbox_factory, tmp_path: Path, fault: str, route: str) -> None:
    sb = sandbox_factory(time_scale=600.0, faults=f"{fault}=#{FAULTED}@{route}")
    archive = archive_of(sb, tmp_path / "a", connection="  max_retries: 0")
    truth = sb.ground_truth()["accounts"][0]
    served = {r["sha256"] for r in truth["recordings"]} | {a["sha256"] for a in truth["attachments"]}

    first = archive.run()

    assert first.status == "partial", first.errors
    stream = "recording" if route == "recording-content" else "message-store"
    # A recording is one item; two faulted attachments may belong to one message.
    least = FAULTED if stream == "recording" else 1
    assert least <= first.failed_items <= FAULTED
    assert first.streams[stream].failed == first.failed_items
    failed = archive.failed()
    assert len(failed) == first.failed_items
    for item in failed:
        for fragment in MESSAGES[(fault, route)]:
            assert fragment in item.error, f"{fragment!r} not in the failed item's message: {item.error}"
    # Nothing but the sandbox's real files in the blob sink (no login page, error body, empty or cut file).
    stored = archive.stored_files()
    assert stored and _digests(stored) <= served, "a body that is not a served file was stored"
    assert all(p.stat().st_size > 0 for p in stored)
    # ...and no record of the failed items in the record sink (never counted archived).
    db, files = archive.sinks()
    try:
        held = {e.key for e in db.archived(stream)}
        assert not {i.key for i in failed} & held
    finally:
        db.close()
        files.close()

    second = archive.run(retry_now=True)

    assert second.status == "ok", second.errors
    assert second.failed_items == 0 and archive.failed() == []
    archive.check_complete(sb)
