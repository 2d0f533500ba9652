"""Listing the call log in explicit date windows, shared by the call-log and recording streams.

Never relies on the server's default ``dateFrom`` (the last 24 hours, the bug that makes other
connectors see one day): every request names both ends of its window. Windows go oldest first, so
recordings (Heavy, and dropped by RingCentral after 90 days) are archived oldest first, and a
checkpoint after each window lets an interrupted backfill resume where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

import rcetl

from .durations import Duration, date_windows, format_instant, now_utc, parse_instant, utc
from .paging import iter_pages
from .payload import records_of
from .throttling import PRIORITY_LIST

if TYPE_CHECKING:
    from .connection import RingCentralConnection

#: How far back a first run reaches by default: the call log is kept "12 months for most accounts",
#: so 13 months is everything still retained, with a month's margin for clock and policy drift.
DEFAULT_BACKFILL = timedelta(days=395)
#: RingCentral deletes recordings after 90 days [partner KB, data retention].
RECORDING_RETENTION = timedelta(days=90)


class CallLogOptions(rcetl.PluginConfig):
    level: Literal["account", "extension"] = Field(
        "account", description="account: every extension (needs ReadCallLog as admin); extension: only `extensions`"
    )
    extensions: list[int | str] | None = Field(None, description="extension ids for level: extension (default: ~)")
    view: Literal["Simple", "Detailed"] = Field("Detailed", description="Detailed keeps every call leg")
    since: datetime | None = Field(None, description="first run starts here (default: 13 months back)")
    window: Duration = Field(timedelta(days=30), description="backfill window per list request series")
    overlap: Duration = Field(timedelta(hours=2), description="re-read before the checkpoint to catch late changes")
    per_page: int = Field(1000, ge=1, le=1000)
    show_deleted: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> CallLogOptions:
        if self.extensions and self.level != "extension":
            raise ValueError("extensions is only used with level: extension")
        if self.window <= timedelta(0):
            raise ValueError("window must be positive (e.g. 30d)")
        return self


def partitions(options: CallLogOptions) -> list[str]:
    if options.level == "account":
        return [""]
    return [str(e) for e in (options.extensions or ["~"])]


def list_path(connection: RingCentralConnection, partition: str) -> str:
    if partition == "":
        return connection.account_path("/call-log")
    return connection.account_path(f"/extension/{partition}/call-log")


def run_range(
    options: CallLogOptions, checkpoint: Any | None, window: rcetl.RunWindow, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """[start, end) of this run: the CLI's window wins, then the checkpoint minus the overlap,
    then ``since``, then everything still retained."""
    now = utc(now or now_utc())
    end = utc(window.until) if window.until else now
    last = parse_instant(checkpoint) if isinstance(checkpoint, str) and not window.full_refresh else None
    if window.since:
        start = utc(window.since)
    elif last is not None:
        start = last - options.overlap
    elif options.since:
        start = utc(options.since)
    else:
        start = now - DEFAULT_BACKFILL
    return start, end


def windows(options: CallLogOptions, checkpoint: Any | None, window: rcetl.RunWindow, now: datetime | None = None):
    start, end = run_range(options, checkpoint, window, now)
    return date_windows(start, end, options.window)


def read_windows(
    connection: RingCentralConnection,
    options: CallLogOptions,
    partition: str,
    checkpoint: Any | None,
    window: rcetl.RunWindow,
    to_records: Callable[[dict[str, Any], str], Iterable[rcetl.Record]],
    extra_params: dict[str, Any] | None = None,
) -> Iterator[rcetl.Record | rcetl.Checkpoint]:
    """Records of every window, each window closed by a Checkpoint at its end."""
    previous = parse_instant(checkpoint) if isinstance(checkpoint, str) else None
    account = connection.account_id()
    url = list_path(connection, partition)
    fetch = lambda u, p: connection.client.get_json(u, p, priority=PRIORITY_LIST)  # noqa: E731
    for date_from, date_to in windows(options, checkpoint, window):
        params: dict[str, Any] = {
            "dateFrom": format_instant(date_from),
            "dateTo": format_instant(date_to),
            "view": options.view,
            "perPage": options.per_page,
            "showDeleted": "true" if options.show_deleted else "false",
            **(extra_params or {}),
        }
        for page in iter_pages(fetch, url, params):
            for raw in records_of(page, "call-log"):
                yield from to_records(raw, account)
        # A run over an explicit past window must not move an incremental position backwards.
        position = date_to if previous is None or window.full_refresh else max(previous, date_to)
        yield rcetl.Checkpoint(value=format_instant(position), partition=partition)


def estimate(options: CallLogOptions, checkpoint: Any | None, window: rcetl.RunWindow) -> tuple[int, datetime, datetime]:
    """(list requests at the least: one page per window, start, end) — computed without a request."""
    start, end = run_range(options, checkpoint, window)
    return max(1, math.ceil((end - start) / options.window)) if end > start else 0, start, end
