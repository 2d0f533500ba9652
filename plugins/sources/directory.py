"""The ``directory`` source: the account's extension list, archived once per run, so an archive can
say who extension 101 was when a call was made (extension numbers are reassigned over time).

Each run reads ``GET /account/~/extension`` (every status, every type; Medium, one request per
``per_page`` extensions) and archives every extension as a record keyed ``<id>@<snapshot>``,
where the snapshot is the run's read time: a later run adds a new snapshot and never overwrites
an earlier one. The data is the API's JSON unchanged; ``occurred_at`` is the snapshot time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import Field

import rcetl

from .ringcentral.durations import Duration, format_instant, now_utc, parse_instant
from .ringcentral.paging import iter_records
from .ringcentral.payload import require_id
from .ringcentral.throttling import LIGHT, MEDIUM, PRIORITY_LIST

if TYPE_CHECKING:
    from .ringcentral import RingCentralConnection

STREAM = "directory"


class DirectoryConfig(rcetl.PluginConfig):
    per_page: int = Field(1000, ge=1, le=1000, description="extensions per list page (RingCentral's default is 100)")
    min_interval: Duration | None = Field(
        None, description="skip the run's snapshot when the last one is younger than this (e.g. 1d); default: every run")


def snapshot_key(extension_id: Any, snapshot: datetime) -> str:
    """``<extension id>@<snapshot>``: one record per extension per snapshot, never overwritten."""
    return f"{extension_id}@{format_instant(snapshot)}"


def directory_record(raw: dict[str, Any], account: str, snapshot: datetime) -> rcetl.Record:
    ext_id = require_id(raw, "extension record")
    return rcetl.Record(stream=STREAM, key=snapshot_key(ext_id, snapshot), data=raw, account=account,
                        occurred_at=snapshot)


class DirectoryStream(rcetl.Stream):
    name = STREAM

    def __init__(self, config: DirectoryConfig, connection: RingCentralConnection) -> None:
        self.config = config
        self.connection = connection

    def partitions(self) -> list[str]:
        return [""]

    def read(self, partition: str, checkpoint: Any | None, window: rcetl.RunWindow) -> Iterator[rcetl.Record | rcetl.Checkpoint]:
        snapshot = now_utc().replace(microsecond=0)
        last = parse_instant(checkpoint) if isinstance(checkpoint, str) and not window.full_refresh else None
        if last is not None and self.config.min_interval is not None and snapshot - last < self.config.min_interval:
            return  # the last snapshot is recent enough; the checkpoint stays where it is
        account = self.connection.account_id()
        fetch = lambda u, p: self.connection.client.get_json(u, p, priority=PRIORITY_LIST)  # noqa: E731
        url = self.connection.account_path("/extension")
        for raw in iter_records(fetch, url, {"perPage": self.config.per_page}):
            yield directory_record(raw, account, snapshot)
        yield rcetl.Checkpoint(partition=partition, value=format_instant(snapshot))

    def download(self, ref: rcetl.BlobRef, out: rcetl.BlobOutput) -> None:
        raise rcetl.PermanentError("directory records carry no binaries")

    def plan(self, partition: str, checkpoint: Any | None, window: rcetl.RunWindow) -> rcetl.StreamPlan:
        requests = {MEDIUM: 1}
        if not self.connection.is_open or self.connection._account_id is None:
            requests[LIGHT] = 1  # resolving the account id
        return rcetl.StreamPlan(
            stream=STREAM,
            description=f"one snapshot of the extension list: one Medium request per {self.config.per_page} extensions",
            requests=requests,
            warnings=["estimate: one page assumed (the number of extensions is known only after listing them)"],
        )


class DirectorySource(rcetl.Source):
    def streams(self) -> list[rcetl.Stream]:
        assert isinstance(self.config, DirectoryConfig)  # the config model this source registered
        return [DirectoryStream(self.config, self.connection)]


@rcetl.hookimpl
def rcetl_sources() -> list[rcetl.SourceSpec]:
    return [
        rcetl.SourceSpec(
            name="directory",
            config=DirectoryConfig,
            factory=DirectorySource,
            connection="ringcentral",
            streams=(STREAM,),
            description="RingCentral extension list (the company directory), one snapshot per run",
        )
    ]
