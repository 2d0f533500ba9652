"""The ``message-store`` source: every mailbox's SMS, MMS, pager, fax and voicemail messages with
all their attachments (MMS images, fax documents, voicemail audio and transcriptions).

Per extension (partition), the first run takes a message-sync FSync token *first*, then lists the
mailbox in dated windows back to ``since``: every change after the token (a message deleted while
the backfill runs) is then reported by the next ISync. Later runs only ISync (Light, one request
for all changes). ISync answers deleted and purged messages with just ``id`` and ``availability``;
those are fetched whole with one batch GET per 50 ids. A refused token (MSG-333) falls back to a
new FSync plus a dated re-list from the last sync time, never to a full backfill.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

import rcetl

from .ringcentral.api_errors import ApiError
from .ringcentral.batch import MAX_BATCH, parse_batch
from .ringcentral.durations import Duration, date_windows, format_instant, now_utc, parse_instant, utc
from .ringcentral.paging import iter_pages, iter_records
from .ringcentral.payload import optional_instant, records_of, require_id
from .ringcentral.throttling import LIGHT, MEDIUM, PRIORITY_DOWNLOAD, PRIORITY_LIST

if TYPE_CHECKING:
    from .ringcentral import RingCentralConnection
from .ringcentral.usage import message_usage

log = logging.getLogger(__name__)

STREAM = "message-store"
MessageType = Literal["SMS", "Pager", "Fax", "VoiceMail"]
ALL_TYPES: tuple[MessageType, ...] = ("SMS", "Pager", "Fax", "VoiceMail")
#: SMS are kept without time limit (5,000 per folder): reach back 3 years on a first run by default.
DEFAULT_BACKFILL = timedelta(days=3 * 365)
AVAILABILITIES = ["Alive", "Deleted", "Purged"]
#: How binaries are named (see ``attachment_blob_id``), kept in every checkpoint. A checkpoint of an
#: older identity (attachments named by their id alone) makes the next run list every mailbox again,
#: so every message is archived anew with its own attachments (docs/reliability.md, "Identity").
IDENTITY = 2
#: What an attachment's bytes may be, by its ``type`` (the content check refuses anything else);
#: other types (MMS pictures, outbound fax sources) must be what their ``contentType`` declares.
ATTACHMENT_TYPES: dict[str, tuple[str, ...]] = {
    "AudioRecording": ("audio/*",),  # voicemail: MP3 or WAV
    "RenderedDocument": ("application/pdf", "image/tiff"),  # a fax as RingCentral renders it
    "AudioTranscription": ("text/*",),
    "Text": ("text/*",),
}
_EXT = {
    "audio/mpeg": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "image/tiff": "tiff",
    "image/jpeg": "jpg",
    "application/pdf": "pdf",
    "text/plain": "txt",
}


class MessageStoreConfig(rcetl.PluginConfig):
    extensions: list[int | str] | None = Field(None, description="only these mailboxes (default: every extension)")
    types: list[MessageType] = Field(default_factory=lambda: list(ALL_TYPES))
    since: datetime | None = Field(None, description="first run lists messages from here (default: 3 years back)")
    window: Duration = Field(timedelta(days=365), description="dated list window of a backfill")
    overlap: Duration = Field(timedelta(hours=2), description="re-list before a refused sync token's time")
    per_page: int = Field(1000, ge=1, le=1000)


def extension_of(ref_ext: Any) -> str:
    return str(ref_ext)


def attachment_blob_id(message_id: int | str, attachment_id: int | str) -> str:
    """A binary's identity: RingCentral numbers attachments per message (several messages of one
    mailbox each have an attachment ``1``), so the id alone names another message's file."""
    return f"attachment-{message_id}-{attachment_id}"


def attachment_ext(content_type: str | None) -> str:
    base = (content_type or "").split(";")[0].strip().lower()
    if base in _EXT:
        return _EXT[base]
    guessed = mimetypes.guess_extension(base) if base else None
    return guessed.lstrip(".") if guessed else "bin"


def message_record(raw: dict[str, Any], account: str, extension: str) -> rcetl.Record:
    """The message as RingCentral sent it, with a BlobRef per attachment it lists. A purged message's
    attachments are erased: they are archived as gone without a request (see ``download``)."""
    availability = raw.get("availability", "Alive")
    key = require_id(raw, "message")
    created = optional_instant(raw, "creationTime", f"message {key!r}")
    blobs = []
    attachments = raw.get("attachments") or []
    if not isinstance(attachments, list):
        raise rcetl.PermanentError(f"RingCentral sent the attachments of message {key!r} as a "
                                   f"{type(attachments).__name__}, not a list")
    for att in attachments:
        if not isinstance(att, dict) or not att.get("uri") or att.get("id") is None:
            continue
        require_id(att, f"attachment of message {key!r}")
        content_type = att.get("contentType")
        size = att.get("size")
        blobs.append(
            rcetl.BlobRef(
                blob_id=attachment_blob_id(raw["id"], att["id"]),
                url=att["uri"],
                kind="attachment",
                content_type=content_type,
                accept=ATTACHMENT_TYPES.get(str(att.get("type")), ()),
                size=size if isinstance(size, int) and size > 0 and availability != "Purged" else None,
                variables={
                    "id": f"{raw['id']}-{att['id']}",  # unique: the attachment id is scoped by its message
                    "attachment_id": att["id"],
                    "message_id": raw["id"],
                    "date": created,
                    "extension": extension,
                    "kind": "attachment",
                    "ext": attachment_ext(content_type),
                    "name": att.get("fileName"),  # as sent: the blob sinks sanitise it
                    "message_type": raw.get("type"),
                    "account": account,
                    "availability": availability,
                },
            )
        )
    return rcetl.Record(
        stream=STREAM,
        key=key,  # an int above 2^53: json keeps it exact, so must we
        data=raw,
        account=account,
        blobs=blobs,
        deleted=availability in ("Deleted", "Purged"),
        occurred_at=created,
    )


def is_partial(raw: dict[str, Any]) -> bool:
    """ISync's answer for deleted/purged messages: only ``id`` and ``availability``."""
    return "creationTime" not in raw and "type" not in raw


class SyncRefused(Exception):
    pass


class MessageStoreStream(rcetl.Stream):
    name = STREAM

    def __init__(self, config: MessageStoreConfig, connection: RingCentralConnection) -> None:
        self.config = config
        self.connection = connection

    # --- partitions: mailboxes -------------------------------------------------------------------

    def partitions(self) -> list[str]:
        if self.config.extensions:
            return [str(e) for e in self.config.extensions]
        fetch = lambda u, p: self.connection.client.get_json(u, p, priority=PRIORITY_LIST)  # noqa: E731
        url = self.connection.account_path("/extension")
        return [str(e["id"]) for e in iter_records(fetch, url, {"perPage": 1000})]

    def _path(self, extension: str, suffix: str) -> str:
        return self.connection.account_path(f"/extension/{extension}{suffix}")

    # --- reading ---------------------------------------------------------------------------------

    def read(self, partition: str, checkpoint: Any | None, window: rcetl.RunWindow) -> Iterator[rcetl.Record | rcetl.Checkpoint]:
        state = dict(checkpoint) if isinstance(checkpoint, dict) and not window.full_refresh else {}
        if state and state.get("identity") != IDENTITY:
            log.warning("extension %s was archived when attachments were named by their id alone (which "
                        "RingCentral repeats across messages): listing the mailbox again to re-archive every "
                        "message with its own attachments", partition)
            state = {}
        account = self.connection.account_id()
        now = now_utc()
        if window.since or window.until:
            # An explicit range from the CLI: list exactly that, keep the sync position as it was.
            yield from self._list(partition, account, utc(window.since or self._default_since(now)), utc(window.until or now))
            if state:
                yield rcetl.Checkpoint(value=state, partition=partition)
            return
        if not state.get("syncToken"):
            state = yield from self._start(partition, account, None)
        backfill = state.get("backfill")
        if backfill:
            start, end = parse_instant(backfill["next"]), parse_instant(backfill["end"])
            assert start is not None and end is not None
            for date_from, date_to in date_windows(start, end, self.config.window):
                yield from self._list(partition, account, date_from, date_to)
                state = {**state, "backfill": {"next": format_instant(date_to), "end": backfill["end"]}}
                yield rcetl.Checkpoint(value=state, partition=partition)
            state = {k: v for k, v in state.items() if k != "backfill"}
            yield rcetl.Checkpoint(value=state, partition=partition)
        try:
            state = yield from self._isync(partition, account, state)
        except SyncRefused:
            restart = (parse_instant(state.get("syncTime")) or self._default_since(now)) - self.config.overlap
            log.info("sync token of extension %s refused; re-listing from %s", partition, format_instant(restart))
            state = yield from self._start(partition, account, restart)
            yield from self.read(partition, state, window)
            return
        yield rcetl.Checkpoint(value=state, partition=partition)

    def _default_since(self, now: datetime) -> datetime:
        return utc(self.config.since) if self.config.since else now - DEFAULT_BACKFILL

    def _start(self, partition: str, account: str, since: datetime | None):
        """FSync first (its token marks the moment from which ISync reports changes), then plan a
        dated backfill from ``since`` (None: the default reach back from that moment) up to it."""
        now = now_utc()
        if since is None:
            # From the same instant as the backfill's end: a reach taken from an earlier clock
            # reading made the span a few milliseconds longer than whole windows whenever a second
            # boundary fell in between, and a fourth, empty list request for that sliver.
            since = self._default_since(now)
        body = self.connection.client.get_json(
            self._path(partition, "/message-sync"),
            {
                "syncType": "FSync",
                "dateFrom": format_instant(now - self.config.overlap),
                "dateTo": format_instant(now),
                "messageType": list(self.config.types),
            },
        )
        for raw in records_of(body, "message-sync"):
            yield message_record(raw, account, partition)
        info = body.get("syncInfo") or {}
        state = {
            "identity": IDENTITY,
            "syncToken": info.get("syncToken"),
            "syncTime": info.get("syncTime") or format_instant(now),
            "backfill": {"next": format_instant(since), "end": format_instant(now)},
        }
        yield rcetl.Checkpoint(value=state, partition=partition)
        return state

    def _list(self, partition: str, account: str, date_from: datetime, date_to: datetime):
        fetch = lambda u, p: self.connection.client.get_json(u, p, priority=PRIORITY_LIST)  # noqa: E731
        params = {
            "dateFrom": format_instant(date_from),
            "dateTo": format_instant(date_to),
            "availability": AVAILABILITIES,  # deleted and purged are archived as such, not dropped
            "messageType": list(self.config.types),
            "perPage": self.config.per_page,
        }
        for page in iter_pages(fetch, self._path(partition, "/message-store"), params):
            for raw in records_of(page, "message-store"):
                yield message_record(raw, account, partition)

    def _isync(self, partition: str, account: str, state: dict[str, Any]):
        try:
            body = self.connection.client.get_json(
                self._path(partition, "/message-sync"),
                {"syncType": "ISync", "syncToken": state["syncToken"], "messageType": list(self.config.types)},
            )
        except ApiError as exc:
            if exc.status == 400:  # MSG-333 "full synchronization is required", or an unusable token
                raise SyncRefused(exc.code) from exc
            raise
        records = records_of(body, "message-sync")
        for r in records:
            require_id(r, "message")
        partial = [r for r in records if is_partial(r)]
        full = self._fetch_whole(partition, [r["id"] for r in partial]) if partial else {}
        for raw in records:
            yield message_record(full.get(raw["id"], raw) if is_partial(raw) else raw, account, partition)
        info = body.get("syncInfo") or {}
        return {"identity": IDENTITY, "syncToken": info.get("syncToken") or state["syncToken"],
                "syncTime": info.get("syncTime") or state.get("syncTime")}

    def _fetch_whole(self, partition: str, ids: list[int]) -> dict[int, dict[str, Any]]:
        """Whole messages for ids sync reported only partially: one Light request per 50 ids."""
        found: dict[int, dict[str, Any]] = {}
        for i in range(0, len(ids), MAX_BATCH):
            chunk = ids[i : i + MAX_BATCH]
            url = self._path(partition, "/message-store/" + ",".join(str(x) for x in chunk))
            try:
                response = self.connection.client.request("GET", url, priority=PRIORITY_LIST)
            except ApiError as exc:
                if exc.status == 404:  # a single id that is physically gone: keep the stub
                    continue
                raise
            for item in parse_batch(response, chunk):
                if item.status == 200 and isinstance(item.body, dict) and "id" in item.body:
                    found[item.body["id"]] = item.body
        return found

    # --- binaries --------------------------------------------------------------------------------

    def planned_download(self, ref: rcetl.BlobRef) -> str | None:
        """The API group ``download(ref)`` spends, or None when it sends nothing (a dry run's count)."""
        return None if ref.variables.get("availability") == "Purged" else MEDIUM

    def download(self, ref: rcetl.BlobRef, out: rcetl.BlobOutput) -> None:
        from .ringcentral.download import download  # lazily: it imports requests

        if ref.variables.get("availability") == "Purged":
            # RingCentral erases a purged message's attachments: no Medium request for a certain 404.
            raise rcetl.ItemGone(f"attachment {ref.variables.get('id', ref.blob_id)} belongs to a purged message")

        download(self.connection.client, ref.url, out, what=f"attachment {ref.variables.get('id', ref.blob_id)}",
                 priority=PRIORITY_DOWNLOAD)

    # --- dry run ---------------------------------------------------------------------------------

    def usage(self, record: rcetl.Record) -> list[rcetl.UsageRow]:
        return message_usage(record)

    def delete(self, record: rcetl.Record) -> str:
        """Two steps as RingCentral has them: a DELETE moves the message to Deleted; the purge is
        explicit (``purge=true``) so nothing stays recoverable once it is proven archived."""
        uri = str(record.data.get("uri") or "")
        if not uri:
            raise rcetl.PermanentError(f"message {record.key!r} has no uri to delete")
        self.connection.client.request("DELETE", uri.split("?", 1)[0], params={"purge": "true"})
        return "purged"

    def plan(self, partition: str, checkpoint: Any | None, window: rcetl.RunWindow) -> rcetl.StreamPlan:
        mailboxes = len(self.config.extensions) if self.config.extensions else None
        per_box = 1  # ISync
        if not (isinstance(checkpoint, dict) and checkpoint.get("syncToken")
                and checkpoint.get("identity") == IDENTITY) or window.full_refresh:
            now = now_utc()
            start = utc(window.since) if window.since else self._default_since(now)
            per_box = 2 + len(date_windows(start, utc(window.until or now), self.config.window))  # FSync, windows, ISync
        boxes = mailboxes or 1
        requests = {LIGHT: per_box * boxes}
        if mailboxes is None:
            requests[MEDIUM] = 1  # the extension list (one page per 1,000 extensions)
        return rcetl.StreamPlan(
            stream=STREAM,
            description=(
                f"{per_box} Light request(s) per mailbox ({'all extensions' if mailboxes is None else mailboxes}), "
                "plus one Light batch GET per 50 deleted messages and one Medium download per attachment"
            ),
            requests=requests,
            warnings=[] if mailboxes else ["the number of mailboxes is known only after listing extensions; counts are per mailbox"],
        )


class MessageStoreSource(rcetl.Source):
    def streams(self) -> list[rcetl.Stream]:
        assert isinstance(self.config, MessageStoreConfig)  # the config model this source registered
        return [MessageStoreStream(self.config, self.connection)]


@rcetl.hookimpl
def rcetl_sources() -> list[rcetl.SourceSpec]:
    return [
        rcetl.SourceSpec(
            name="message-store",
            config=MessageStoreConfig,
            factory=MessageStoreSource,
            connection="ringcentral",
            streams=(STREAM,),
            description="RingCentral SMS/MMS, pager, fax and voicemail messages of every mailbox, with attachments",
        )
    ]
