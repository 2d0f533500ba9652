"""The ``recording`` source: the audio of every recorded call, one Heavy request per recording.

A child of the call-log stream: the call-log record already carries each recording's id, type and
``contentUri``, so recordings are derived from it (no second listing of the call log, no per-recording
metadata GET). When the call-log stream is not in the run, ``read`` lists the call log itself with
``withRecording=true`` (one Heavy page per 1,000 recorded calls) in its own windows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import Field

import rcetl

from .ringcentral import call_log_listing as listing
from .ringcentral.durations import now_utc, parse_instant
from .ringcentral.payload import optional_instant, require_id
from .ringcentral.throttling import HEAVY, LIGHT, PRIORITY_DOWNLOAD, configured_limits

if TYPE_CHECKING:
    from .ringcentral import RingCentralConnection

STREAM = "recording"
#: A day of slack on the retention: a recording a few hours past 90 days may still be served.
RETENTION_MARGIN = timedelta(days=1)
PARENT = "call-log"
#: RingCentral serves audio/mpeg unless the account is set to WAV; the call log does not say which.
DEFAULT_CONTENT_TYPE = "audio/mpeg"
#: What a recording's bytes may be: the listing cannot say MP3 or WAV, only that it is audio.
RECORDING_TYPES = ("audio/*",)
_EXT = {"audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav"}
_CALL_FIELDS = ("id", "sessionId", "telephonySessionId", "startTime", "duration", "direction", "extension", "from", "to")


class RecordingConfig(listing.CallLogOptions):
    """Window options apply only when the call-log stream is not in the run (``read``)."""

    skip_past_retention: bool = Field(
        True, description="record recordings older than RingCentral's 90-day retention (plus a day of margin) "
        "as gone without spending a Heavy request on a certain 404; false asks for each")


def recordings_in(call: dict[str, Any]) -> list[dict[str, Any]]:
    """Every distinct recording of a call-log record: its own and, in Detailed view, its legs'."""
    found: dict[str, dict[str, Any]] = {}
    for holder in [call, *(call.get("legs") or [])]:
        rec = holder.get("recording") if isinstance(holder, dict) else None
        if isinstance(rec, dict) and rec.get("id") is not None and rec.get("contentUri"):
            found.setdefault(str(require_id(rec, "recording")), rec)
    return list(found.values())


def recording_records(call: dict[str, Any], account: str) -> list[rcetl.Record]:
    out = []
    call_info = {k: call[k] for k in _CALL_FIELDS if k in call}
    started: datetime | None = optional_instant(call, "startTime", f"call-log record {call.get('id')!r}")
    extension = (call.get("extension") or {}).get("id")
    for rec in recordings_in(call):
        rec_id = str(rec["id"])
        content_type = rec.get("contentType") or DEFAULT_CONTENT_TYPE
        data = {**rec, "call": call_info}
        blob = rcetl.BlobRef(
            blob_id=f"recording-{rec_id}",
            url=rec["contentUri"],
            kind="recording",
            content_type=content_type,
            accept=RECORDING_TYPES,
            variables={
                "id": rec_id,
                "date": started,
                "extension": extension if extension is not None else "account",
                "kind": "recording",
                "ext": _EXT.get(content_type.split(";")[0].strip().lower(), "mp3"),
                "account": account,
                "call_id": call.get("id"),
                "type": rec.get("type"),
            },
        )
        out.append(
            rcetl.Record(stream=STREAM, key=rec_id, data=data, account=account, blobs=[blob], occurred_at=started)
        )
    return out


class RecordingStream(rcetl.Stream):
    name = STREAM
    parent = PARENT

    def __init__(self, config: RecordingConfig, connection: RingCentralConnection) -> None:
        self.config = config
        self.connection = connection
        # Transfers put one recording in several records and the overlap re-reads a tail: derive each
        # recording once per run so its Heavy download is spent once.
        self._seen: set[str] = set()
        self._seen_lock = threading.Lock()

    def partitions(self) -> list[str]:
        return listing.partitions(self.config)

    def _first_time(self, records: list[rcetl.Record]) -> list[rcetl.Record]:
        with self._seen_lock:
            fresh = [r for r in records if r.key not in self._seen]
            self._seen.update(str(r.key) for r in fresh)
        return fresh

    def derive(self, parent: rcetl.Record) -> Iterable[rcetl.Record]:
        return self._first_time(recording_records(parent.data, parent.account))

    def read(self, partition: str, checkpoint: Any | None, window: rcetl.RunWindow) -> Iterator[rcetl.Record | rcetl.Checkpoint]:
        yield from listing.read_windows(
            self.connection,
            self.config,
            partition,
            checkpoint,
            window,
            lambda raw, account: self._first_time(recording_records(raw, account)),
            {"withRecording": "true", "recordingType": "All"},
        )

    def _past_retention(self, ref: rcetl.BlobRef) -> bool:
        started = ref.variables.get("date")
        started = parse_instant(started) if isinstance(started, str) else started
        return bool(self.config.skip_past_retention and isinstance(started, datetime)
                    and started < now_utc() - listing.RECORDING_RETENTION - RETENTION_MARGIN)

    def planned_download(self, ref: rcetl.BlobRef) -> str | None:
        """The API group ``download(ref)`` spends, or None when it sends nothing (a dry run's count)."""
        return None if self._past_retention(ref) else HEAVY

    def download(self, ref: rcetl.BlobRef, out: rcetl.BlobOutput) -> None:
        from .ringcentral.download import download  # lazily: it imports requests

        if self._past_retention(ref):
            # RingCentral has deleted it: a request would only spend Heavy budget on a 404.
            raise rcetl.ItemGone(f"recording {ref.variables.get('id', ref.blob_id)} is past RingCentral's "
                                 f"{listing.RECORDING_RETENTION.days}-day retention")

        download(self.connection.client, ref.url, out, what=f"recording {ref.variables.get('id', ref.blob_id)}",
                 priority=PRIORITY_DOWNLOAD)

    def delete(self, record: rcetl.Record) -> str:
        """Delete the recording file (the call-log record stays, as RingCentral keeps it)."""
        import json

        self.connection.client.request(
            "DELETE", self.connection.account_path("/call-recordings"),
            data=json.dumps({"records": [str(record.key)]}),  # type: ignore[arg-type]
            headers={"Content-Type": "application/json"},
        )
        return "deleted"

    def plan(self, partition: str, checkpoint: Any | None, window: rcetl.RunWindow) -> rcetl.StreamPlan:
        pages, start, end = listing.estimate(self.config, checkpoint, window)
        heavy_per_minute = configured_limits(self.connection.config.limits)[HEAVY]
        warnings = retention_warnings(start, end, heavy_per_minute)
        return rcetl.StreamPlan(
            stream=STREAM,
            description=(
                f"recordings of calls {start:%Y-%m-%d} .. {end:%Y-%m-%d}: one Heavy download each, oldest first; "
                f"{pages} Heavy list page(s) at least if the call-log stream is not in the run"
            ),
            requests={HEAVY: pages, LIGHT: 1},
            warnings=warnings,
        )


def retention_warnings(start: datetime, end: datetime, heavy_per_minute: int, now: datetime | None = None) -> list[str]:
    """What will age out (90-day recording retention) before this backlog can be downloaded."""
    now = now or now_utc()
    warnings = []
    cutoff = now - listing.RECORDING_RETENTION
    if start < cutoff:
        warnings.append(
            f"recordings of calls before {cutoff:%Y-%m-%d} are past RingCentral's 90-day retention: "
            "they are archived as gone, only their call-log records remain"
        )
    oldest = max(start, cutoff)
    if oldest < end:
        days_left = max((oldest + listing.RECORDING_RETENTION - now) / timedelta(days=1), 0.0)
        per_day = heavy_per_minute * 60 * 24
        capacity = int(days_left * per_day)
        if days_left < 1:
            warnings.append(
                f"the oldest retained recordings ({oldest:%Y-%m-%d}) age out within a day; windows go oldest "
                f"first, and at {heavy_per_minute} Heavy requests/min (shared with call-log pages) about "
                f"{per_day:,} recordings a day can be downloaded: a larger backlog loses some of its oldest"
            )
        else:
            warnings.append(
                f"the oldest recordings in range ({oldest:%Y-%m-%d}) age out in {days_left:.1f} days; at "
                f"{heavy_per_minute} Heavy requests/min (shared with call-log pages) about {per_day:,} recordings "
                f"a day can be downloaded, so a backlog above ~{capacity:,} recordings will lose its oldest"
            )
    return warnings


class RecordingSource(rcetl.Source):
    def streams(self) -> list[rcetl.Stream]:
        assert isinstance(self.config, RecordingConfig)  # the config model this source registered
        return [RecordingStream(self.config, self.connection)]


@rcetl.hookimpl
def rcetl_sources() -> list[rcetl.SourceSpec]:
    return [
        rcetl.SourceSpec(
            name="recording",
            config=RecordingConfig,
            factory=RecordingSource,
            connection="ringcentral",
            streams=(STREAM,),
            description="RingCentral call recordings (audio), derived from the call log, one Heavy request each",
        )
    ]
