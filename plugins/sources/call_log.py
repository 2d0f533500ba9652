"""The ``call-log`` source: every call-log record of the account (or of chosen extensions),
backfilled in date windows and then read incrementally with an overlap for late changes.

Records deleted at RingCentral after they were archived fall outside any overlap, so the stream also
keeps a call-log sync token: before listing, one ISync with ``showDeleted=true`` (one Heavy request
per run and partition) returns every record changed since the last run, deleted ones with
``deleted: true``, which the sinks then mark deleted. The token is taken (FSync) *before* a backfill
lists anything, so nothing deleted meanwhile is missed. When RingCentral refuses the token (more
than 250 changes since it was issued, or a demanded resync) and when an archive was written before
tokens were kept, the retained call log is listed once more with ``showDeleted`` (one Heavy page per
1,000 calls) to find what was deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import rcetl

from .ringcentral import call_log_listing as listing
from .ringcentral.api_errors import ApiError
from .ringcentral.durations import parse_instant
from .ringcentral.payload import optional_instant, records_of, require_id
from .ringcentral.throttling import HEAVY, LIGHT, PRIORITY_LIST
from .ringcentral.usage import call_usage

if TYPE_CHECKING:
    from .ringcentral import RingCentralConnection

log = logging.getLogger(__name__)

STREAM = "call-log"
#: A checkpoint is {"position": ISO instant, "syncToken": ...}; a bare ISO string is one written
#: before sync tokens were kept (its archive may miss deletions: they are looked for once).
POSITION, TOKEN = "position", "syncToken"
#: Kept when the server answered the FSync with 403/404: no re-listing for want of a token.
SYNC, UNAVAILABLE = "sync", "unavailable"


class CallLogConfig(listing.CallLogOptions):
    pass


def call_log_record(raw: dict[str, Any], account: str) -> rcetl.Record:
    """The API's record unchanged (every field kept); a deleted record is archived as deleted."""
    key = str(require_id(raw, "call-log record"))
    return rcetl.Record(
        stream=STREAM,
        key=key,
        data=raw,
        account=account,
        deleted=bool(raw.get("deleted")),
        occurred_at=optional_instant(raw, "startTime", f"call-log record {key!r}"),
    )


class CallLogStream(rcetl.Stream):
    name = STREAM

    def __init__(self, config: CallLogConfig, connection: RingCentralConnection) -> None:
        self.config = config
        self.connection = connection

    def partitions(self) -> list[str]:
        return listing.partitions(self.config)

    def read(self, partition: str, checkpoint: Any | None, window: rcetl.RunWindow) -> Iterator[rcetl.Record | rcetl.Checkpoint]:
        position, token = split_checkpoint(checkpoint)
        account = self.connection.account_id()
        unavailable = isinstance(checkpoint, dict) and checkpoint.get(SYNC) == UNAVAILABLE
        if window.since or window.until:
            # An explicit range from the CLI: list exactly that; the sync position stays as it was.
            yield from self._listed(partition, position, window, token, unavailable=unavailable)
            return
        relist = False
        if token is not None and not window.full_refresh:
            try:
                changes, token = self._sync(partition, {"syncType": "ISync", "syncToken": token, "showDeleted": "true"})
            except ApiError as exc:
                if exc.status != 400:  # CLG-10x: too many changes since the token, or a demanded resync
                    raise
                changes, token, relist = [], None, True
            for raw in changes:
                yield call_log_record(raw, account)
        else:
            # An archive from before tokens (not one whose server has no sync: re-listing would not end).
            relist = position is not None and not window.full_refresh and not unavailable
        if token is None:
            # First, so that whatever changes while the listing runs is in the next ISync.
            try:
                _, token = self._sync(partition, {"syncType": "FSync", "recordCount": 1})
                unavailable = False
            except ApiError as exc:
                if exc.status not in (403, 404):
                    raise
                log.warning("call-log sync is not available (%s %s): calls deleted at RingCentral after they "
                            "were archived cannot be detected; listing continues", exc.status, exc.code or "")
                token, relist, unavailable = None, False, True
        if relist:
            # Deletions since the archive's last run are unknown: list everything retained again, up
            # to now (the records' binaries are not downloaded again; see the engine's blob ledger).
            yield from self._listed(partition, None, rcetl.RunWindow(full_refresh=True), token, keep=position)
            return
        yield from self._listed(partition, position, window, token, unavailable=unavailable)

    def _listed(self, partition: str, position: str | None, window: rcetl.RunWindow, token: str | None,
                keep: str | None = None, unavailable: bool = False) -> Iterator[rcetl.Record | rcetl.Checkpoint]:
        """The windows' records; each checkpoint carries the sync token (and, for a re-listing of
        what is already archived, the position ``keep`` it must not move back from)."""
        last = None
        for item in listing.read_windows(self.connection, self.config, partition, position, window,
                                         lambda raw, account: [call_log_record(raw, account)],
                                         {"withRecording": "false"}):  # every call, with or without a recording
            if not isinstance(item, rcetl.Checkpoint):
                yield item
                continue
            if keep is None:
                value: dict[str, Any] = {POSITION: item.value, TOKEN: token}
                if unavailable:
                    value[SYNC] = UNAVAILABLE
                yield rcetl.Checkpoint(value=value, partition=item.partition)
                continue
            # A re-listing keeps no token until it is complete: stopped halfway, it starts over.
            last = rcetl.Checkpoint(value={POSITION: max(keep, item.value, key=_instant), TOKEN: None},
                                    partition=item.partition)
            yield last
        if last is not None:
            yield rcetl.Checkpoint(value={**last.value, TOKEN: token}, partition=last.partition)

    def _sync(self, partition: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        path = "/call-log-sync" if partition == "" else f"/extension/{partition}/call-log-sync"
        body = self.connection.client.get_json(self.connection.account_path(path),
                                               {"view": self.config.view, **params}, priority=PRIORITY_LIST)
        info = body.get("syncInfo") if isinstance(body, dict) else None
        token = info.get("syncToken") if isinstance(info, dict) else None
        return records_of(body, "call-log-sync"), token if isinstance(token, str) and token else None

    def download(self, ref: rcetl.BlobRef, out: rcetl.BlobOutput) -> None:
        raise rcetl.PermanentError("call-log records carry no binaries; recordings belong to the recording stream")

    def usage(self, record: rcetl.Record) -> list[rcetl.UsageRow]:
        return call_usage(record)

    def plan(self, partition: str, checkpoint: Any | None, window: rcetl.RunWindow) -> rcetl.StreamPlan:
        position, token = split_checkpoint(checkpoint)
        pages, start, end = listing.estimate(self.config, position, window)
        explicit = bool(window.since or window.until)
        syncs = 0 if explicit else 1  # ISync for deletions, or FSync for the first token
        requests = {HEAVY: pages + syncs}
        if not self.connection.is_open or self.connection._account_id is None:
            requests[LIGHT] = 1  # resolving the account id
        warnings = []
        if position is not None and token is None and not window.full_refresh and not explicit:
            relist, _, _ = listing.estimate(self.config, None, rcetl.RunWindow(full_refresh=True))
            requests[HEAVY] += relist
            warnings.append(f"the archive has no call-log sync token yet: the retained call log is listed once more "
                            f"with deleted records ({relist}+ Heavy pages) to mark calls deleted since")
        return rcetl.StreamPlan(
            stream=STREAM,
            description=(
                f"call log {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} in {pages} window(s) of "
                f"{self.config.window}; at least one Heavy page per window, one more per 1,000 calls"
                + ("" if explicit else "; plus one Heavy call-log sync for records deleted at RingCentral since the "
                   "last run (if RingCentral refuses it, >250 changes, the retained call log is listed again: "
                   "one Heavy page per 1,000 calls)")
            ),
            requests=requests,
            warnings=warnings,
        )


def split_checkpoint(checkpoint: Any | None) -> tuple[str | None, str | None]:
    """(position, sync token) of a checkpoint of either form."""
    if isinstance(checkpoint, dict):
        position, token = checkpoint.get(POSITION), checkpoint.get(TOKEN)
        return (position if isinstance(position, str) else None), (token if isinstance(token, str) else None)
    return (checkpoint if isinstance(checkpoint, str) else None), None


def _instant(value: str) -> Any:
    return parse_instant(value)


class CallLogSource(rcetl.Source):
    def streams(self) -> list[rcetl.Stream]:
        assert isinstance(self.config, CallLogConfig)  # the config model this source registered
        return [CallLogStream(self.config, self.connection)]


@rcetl.hookimpl
def rcetl_sources() -> list[rcetl.SourceSpec]:
    return [
        rcetl.SourceSpec(
            name="call-log",
            config=CallLogConfig,
            factory=CallLogSource,
            connection="ringcentral",
            streams=(STREAM,),
            description="RingCentral call log (account or extension level), every field, deleted records included",
        )
    ]
