"""No binary is downloaded twice (issue 15, point 4).

The overlap window and ``--full-refresh`` re-read records on purpose; a recording (one Heavy request)
or an attachment every sink already holds with its recorded checksum is not downloaded again. The
sandbox counts what was really requested, so the test cannot be fooled by rcetl's own tallies.
"""

from __future__ import annotations

from pathlib import Path

from .runs import archive_of

CONTENT = ("recording-content", "attachment-content")


def _downloads(sb) -> dict[str, int]:  # noqa: ANN001
    served = sb.counters()["by_endpoint"]
    return {route: served.get(route, 0) for route in CONTENT}


def _stored(sb) -> tuple[int, int]:  # noqa: ANN001
    truth = sb.ground_truth()["accounts"][0]
    return (sum(1 for r in truth["recordings"] if r["available"]),
            sum(1 for a in truth["attachments"] if a["available"]))


def test_a_full_refresh_of_a_complete_archive_downloads_no_binary(sandbox_factory, tmp_path: Path) -> None:
    sb = sandbox_factory(time_scale=600.0)
    archive = archive_of(sb, tmp_path / "a")
    assert archive.run().status == "ok"
    before = _downloads(sb)
    recordings, attachments = _stored(sb)
    assert before["recording-content"] >= recordings > 0 and before["attachment-content"] >= attachments > 0

    again = archive.run(full_refresh=True)

    assert again.status == "ok", again.errors
    assert _downloads(sb) == before, "a full refresh downloaded binaries the archive already holds"
    truth = sb.ground_truth()["accounts"][0]  # gone binaries are not asked for again either
    assert again.streams["recording"].reused == len(truth["recordings"])
    assert again.streams["message-store"].reused == len(truth["attachments"])
    assert again.streams["recording"].records == len(sb.ground_truth()["accounts"][0]["recordings"])
    archive.check_complete(sb)  # the reused entries still point at the right bytes

    # --redownload asks for every binary again (and stores nothing new: the bytes are the same).
    forced = archive.run(full_refresh=True, redownload=True)
    assert forced.status == "ok", forced.errors
    after = _downloads(sb)
    assert after["recording-content"] - before["recording-content"] == recordings
    assert after["attachment-content"] - before["attachment-content"] == attachments
    assert forced.streams["recording"].reused == 0
    archive.check_complete(sb)


def test_a_binary_missing_from_a_sink_is_downloaded_again(sandbox_factory, tmp_path: Path) -> None:
    sb = sandbox_factory(time_scale=600.0)
    archive = archive_of(sb, tmp_path / "a")
    assert archive.run().status == "ok"
    recording = next(p for p in archive.stored_files() if "recording" in str(p))
    attachment = next(p for p in archive.stored_files() if "recording" not in str(p))
    for lost in (recording, attachment):
        lost.unlink()  # lost from the sink: the ledger's record alone must not stop the download
    before = _downloads(sb)

    again = archive.run(full_refresh=True)

    assert again.status == "ok", again.errors
    downloaded = {k: v - before[k] for k, v in _downloads(sb).items()}
    assert downloaded == {"recording-content": 1, "attachment-content": 1}, downloaded
    assert recording.exists() and attachment.exists()
    archive.check_complete(sb)


def _recordings_of(calls: list[dict]) -> set[str]:
    return {str(r["id"]) for c in calls for r in [c.get("recording"), *(leg.get("recording") for leg in c.get("legs", []))]
            if r}


def test_the_overlap_window_downloads_only_new_recordings(sandbox_factory, tmp_path: Path) -> None:
    sb = sandbox_factory(time_scale=600.0)
    archive = archive_of(sb, tmp_path / "a")
    assert archive.run().status == "ok"
    new = _recordings_of(sb.add_calls(20, recordings=5))  # calls of the last minutes
    assert new
    before = _downloads(sb)

    later = archive.run()

    assert later.status == "ok", later.errors
    assert _downloads(sb)["recording-content"] - before["recording-content"] == len(new)
    before = _downloads(sb)

    # Nothing new: the overlap re-reads those calls (and their recordings) but downloads nothing.
    overlap = archive.run()

    assert overlap.status == "ok", overlap.errors
    assert overlap.streams["recording"].records >= len(new)
    assert overlap.streams["recording"].reused >= len(new)
    assert _downloads(sb) == before
    archive.check_complete(sb)
