"""The ``call-log`` source: every call-log record of the account (or of chosen extensions),
backfilled in date windows and then read incrementally with an overlap for late changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

import rcetl

from .ringcentral import call_log_listing as listing
from .ringcentral.payload import optional_instant, require_id
from .ringcentral.throttling import HEAVY, LIGHT
from .ringcentral.usage import call_usage

if TYPE_CHECKING:
    from .ringcentral import RingCentralConnection

STREAM = "call-log"


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
        yield from listing.read_windows(
            self.connection,
            self.config,
            partition,
            checkpoint,
            window,
            lambda raw, account: [call_log_record(raw, account)],
            {"withRecording": "false"},  # every call, with or without a recording
        )

    def download(self, ref: rcetl.BlobRef, out: BinaryIO) -> None:
        raise rcetl.PermanentError("call-log records carry no binaries; recordings belong to the recording stream")

    def usage(self, record: rcetl.Record) -> list[rcetl.UsageRow]:
        return call_usage(record)

    def plan(self, partition: str, checkpoint: Any | None, window: rcetl.RunWindow) -> rcetl.StreamPlan:
        pages, start, end = listing.estimate(self.config, checkpoint, window)
        requests = {HEAVY: pages}
        if not self.connection.is_open or self.connection._account_id is None:
            requests[LIGHT] = 1  # resolving the account id
        return rcetl.StreamPlan(
            stream=STREAM,
            description=(
                f"call log {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} in {pages} window(s) of "
                f"{self.config.window}; at least one Heavy page per window, one more per 1,000 calls"
            ),
            requests=requests,
        )


class CallLogSource(rcetl.Source):
    def streams(self) -> list[rcetl.Stream]:
        return [CallLogStream(self.config, self.connection)]  # type: ignore[arg-type]


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
