"""Browse queries over the ``lake`` sink's Parquet files (``stream=<s>/date=<YYYY-MM-DD>/part-0.parquet``).

There is no server to ask: a search reads the files itself, with pyarrow, newest day first, and
stops as soon as it has a page. What keeps that from reading the whole archive:

- **partitions**: a day's file holds the records whose time is on that day (the sink partitions by
  ``occurred_at``, the call's start or the message's creation, the column searched by), so a date
  range or a cursor skips every file outside it by its path alone;
- **footers**: the filters are one pyarrow expression, checked first against the file's row-group
  statistics (min/max of ``from_e164``, ``start_time``, ...): a day that cannot match is skipped after
  reading its footer only;
- **columns**: a file is read in two steps, the filter columns (short typed values) first, then the
  API's JSON (``raw``, by far the largest column) only for a file with rows to show or, for a name
  search, to check.

A phone search over a whole archive still reads the two number columns of every day until it has a
page (a day of 10,000 calls is ~0.1 MB of them): fine for an archive's size per day, and documented
as a scan (docs/browse.md). ``call``/``message`` find a record's day from the search that listed it
(remembered here); otherwise they read the key column of every day.
"""

from __future__ import annotations

import posixpath
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

import rcetl

from . import query

#: The column each stream's time is searched and ordered by (the SQL sink's).
TIME = {"call-log": "start_time", "message-store": "creation_time", "recording": "start_time"}
#: The keyset's second column, typed as the SQL sink's ``id`` (a message id is a number).
ORDER = {"call-log": "key", "message-store": "id", "recording": "key"}
_TS = pa.timestamp("ms", tz="UTC")
NO_DATE = "__HIVE_DEFAULT_PARTITION__"
#: Records whose file a search or a lookup found, remembered for the detail pages (bounded).
_REMEMBERED = 50_000
_ROWS = 64


class LakeArchiveIndex:
    """:class:`~rcetl.plugins.browse.query.ArchiveIndex` over a ``LakeSink``'s files."""

    def __init__(self, sink: Any) -> None:
        from rcetl.plugins.sinks.lake.schema import schema_for

        self.sink = sink
        self.fs = sink.fs
        self._schema_for = schema_for
        self._where: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        self._guard = threading.Lock()
        #: Rows the detail pages read, with the (mtime_ns, size) of their file then. Bounded.
        self._rows: OrderedDict[tuple[str, str, str], tuple[str, Any, dict[str, Any]]] = OrderedDict()
        #: Files whose columns a search read, newest last (what tests check pruning with). Bounded.
        self.read: list[str] = []

    # --- files --------------------------------------------------------------------------------

    def _days(self, stream: str) -> list[tuple[str, str]]:
        """(YYYY-MM-DD or Hive's null partition, path) of the stream's files, newest day first."""
        out = []
        for path in self.sink.files(stream):
            folder = posixpath.basename(posixpath.dirname(path))
            if folder.startswith("date="):
                out.append((folder[5:], path))
        return sorted(out, reverse=True)

    def _table(self, path: str, stream: str, columns: list[str]) -> pa.Table:
        self.read = [*self.read[-199:], path]
        # The stream's schema: a file written before a column was added reads it as null.
        return pq.read_table(path, filesystem=self.fs, columns=columns, schema=self._schema_for(stream))

    def _may_match(self, path: str, stream: str, expr: pc.Expression) -> bool:
        """Whether the file's row-group statistics leave any row group that may match (footer only)."""
        dataset = ds.dataset(path, format="parquet", filesystem=self.fs, schema=self._schema_for(stream))
        return any(fragment.subset(expr).num_row_groups for fragment in dataset.get_fragments())

    def _remember(self, stream: str, account: str, key: str, path: str) -> None:
        with self._guard:
            self._where[(stream, account, key)] = path
            self._where.move_to_end((stream, account, key))
            while len(self._where) > _REMEMBERED:
                self._where.popitem(last=False)

    # --- searches -----------------------------------------------------------------------------

    def _search(self, stream: str, filters: query.Filters) -> query.Page:
        time_col, order_col = TIME[stream], ORDER[stream]
        f = pc.field
        conds: list[pc.Expression] = [f(time_col).is_valid()]
        if filters.phone:
            conds.append((f("from_e164") == filters.phone) | (f("to_e164") == filters.phone))
        if filters.direction:
            conds.append(f("direction") == filters.direction)
        types = filters.call_types() if stream == "call-log" else filters.message_types()
        if types:
            conds.append(f("type").isin(list(types)))
        if stream == "call-log":
            if filters.result:
                conds.append(f("result") == filters.result)
            if filters.extension:
                conds.append(f("extension_id") == str(int(filters.extension)))
            if filters.has_recording:
                conds.append(f("recording_id").is_valid())
        if filters.since:
            conds.append(f(time_col) >= pa.scalar(filters.since, _TS))
        if filters.until:
            conds.append(f(time_col) < pa.scalar(filters.until, _TS))
        # A party's name, and a message sender's extension, are in the JSON only.
        check = query.json_check(filters, stream, ("name",) if stream == "call-log" else ("name", "extension"))
        newest = _day(filters.until - timedelta(microseconds=1)) if filters.until else None
        if filters.cursor:
            at, ident = query.decode_cursor(filters.cursor)
            if at is not None:
                key: Any = int(ident) if order_col == "id" and ident.lstrip("-").isdigit() else ident
                at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
                stamp = pa.scalar(at, _TS)
                conds.append((f(time_col) < stamp) | ((f(time_col) == stamp) & (f(order_col) < key)))
                newest = min(newest, _day(at)) if newest else _day(at)
        oldest = _day(filters.since) if filters.since else None
        expr = conds[0]
        for cond in conds[1:]:
            expr = expr & cond
        columns = sorted({"account", "key", "deleted", time_col, order_col, *_fields(filters, stream)})
        hits: list[query.Hit] = []
        for day, path in self._days(stream):
            if day == NO_DATE or (newest and day > newest):
                continue
            if oldest and day < oldest:
                break
            if len(conds) > 1 and not self._may_match(path, stream, expr):
                continue
            table = self._table(path, stream, columns)
            table = table.append_column("__row", pa.array(range(table.num_rows), pa.int64())).filter(expr)
            if not table.num_rows:
                continue
            table = table.sort_by([(time_col, "descending"), (order_col, "descending")])
            for hit in self._hits(path, stream, table, check, filters.limit + 1 - len(hits), filters.name):
                hits.append(hit)
            if len(hits) > filters.limit:
                shown = hits[: filters.limit]
                return query.Page(shown, query.encode_cursor(shown[-1].time, shown[-1].id))
        return query.Page(hits)

    def _hits(self, path: str, stream: str, table: pa.Table, check: Callable[[Mapping[str, Any]], bool] | None,
              wanted: int, name: str | None) -> Iterator[query.Hit]:
        """Up to ``wanted`` hits from ``table`` (matching rows of ``path``, in page order), their
        JSON read from the file and checked with ``check``."""
        rows = table["__row"]
        if check is None:
            rows = rows.slice(0, wanted)
        raw = self._table(path, stream, ["raw"])["raw"].take(rows)
        run = query.raw_run(name) if name else None  # a superset of the check, on the text
        keep = pc.match_substring(raw, run, ignore_case=True) if run else None
        time_col = TIME[stream]
        accounts, keys, times, deleted = (table[c].to_pylist() for c in ("account", "key", time_col, "deleted"))
        for i in range(len(rows)):
            if wanted <= 0:
                return
            if keep is not None and not keep[i].as_py():
                continue
            data = _json(raw[i].as_py())
            if check is not None and not check(data):
                continue
            self._remember(stream, accounts[i], keys[i], path)
            wanted -= 1
            yield query.hit_from_json(stream, accounts[i], keys[i], times[i], data, bool(deleted[i]))

    def search_calls(self, filters: query.Filters) -> query.Page:
        return self._search("call-log", filters)

    def search_messages(self, filters: query.Filters) -> query.Page:
        return self._search("message-store", filters)

    # --- details ------------------------------------------------------------------------------

    def _record(self, stream: str, account: str, key: str, near: str | None = None) -> dict[str, Any] | None:
        """The row of (account, key) with its JSON: from the file a search found it in, the file of
        the day ``near``, else every file of the stream, newest first (their key columns)."""
        with self._guard:
            known = self._where.get((stream, account, key))
            cached = self._rows.get((stream, account, key))
        if cached is not None and cached[1] == self._stamp(cached[0]):
            return dict(cached[2])  # the same file as when it was read (a page's audio asks per Range)
        if known is not None and (row := self._row_in(known, stream, account, key)) is not None:
            return row
        files = self._days(stream)
        first = [p for d, p in files if d == near]
        for path in [*first, *(p for _, p in files if p not in first and p != known)]:
            if (row := self._row_in(path, stream, account, key)) is not None:
                return row
        return None

    def _row_in(self, path: str, stream: str, account: str, key: str) -> dict[str, Any] | None:
        stamp = self._stamp(path)
        if stamp is None:
            return None
        table = self._table(path, stream, ["account", "key"])
        found = pc.indices_nonzero(pc.and_(pc.equal(table["account"], account), pc.equal(table["key"], key)))
        if not len(found):
            return None
        columns = [c for c in self._schema_for(stream).names if c not in ("legs", "attachments")]
        row = self._table(path, stream, columns).take(found[:1]).to_pylist()[0]
        row["date"] = posixpath.basename(posixpath.dirname(path))[5:]
        self._remember(stream, account, key, path)
        with self._guard:
            self._rows[(stream, account, key)] = (path, stamp, row)
            while len(self._rows) > _ROWS:
                self._rows.popitem(last=False)
        return dict(row)

    def _stamp(self, path: str) -> tuple[int | None, int | None] | None:
        info = self.fs.get_file_info(path)
        return None if info.type == pafs.FileType.NotFound else (info.mtime_ns, info.size)

    def call(self, account: str, call_id: str) -> query.Detail | None:
        row = self._record("call-log", account, call_id)
        if row is None:
            return None
        data = _json(row["raw"])
        binaries: list[query.Binary] = []
        if row.get("recording_id") is not None:
            rec = self._record("recording", account, row["recording_id"], near=row["date"])
            if rec is not None:
                binaries = query.binaries_from_archive(_json(rec["archive"]))
        legs = [leg for leg in data.get("legs") or [] if isinstance(leg, dict)]
        return query.Detail(hit=_hit("call-log", row, data), raw=data, legs=legs, binaries=binaries)

    def message(self, account: str, message_id: int) -> query.Detail | None:
        row = self._record("message-store", account, str(message_id))
        if row is None:
            return None
        data = _json(row["raw"])
        archive = _json(row["archive"])
        return query.Detail(hit=_hit("message-store", row, data), raw=data,
                      binaries=query.binaries_from_archive(archive, query.attachment_names(data, archive)),
                      conversation_id=query.conversation_of(data))

    def thread(self, account: str, conversation_id: str, limit: int = 200) -> list[query.Hit]:
        """The conversation's messages: the ``conversation_id`` column of every day (a conversation
        spans days), the JSON of the matching rows only."""
        try:
            wanted = int(conversation_id)
        except ValueError:
            return []
        expr = (pc.field("account") == account) & (pc.field("conversation_id") == wanted)
        found: list[query.Hit] = []
        for _, path in self._days("message-store"):
            if not self._may_match(path, "message-store", expr):
                continue
            table = self._table(path, "message-store", ["account", "key", "deleted", "creation_time",
                                                        "conversation_id"])
            table = table.append_column("__row", pa.array(range(table.num_rows), pa.int64())).filter(expr)
            if table.num_rows:
                found += self._hits(path, "message-store", table, None, table.num_rows, None)
        never = datetime.min.replace(tzinfo=timezone.utc)
        return sorted(found, key=lambda h: h.time or never)[:limit]

    # --- coverage -----------------------------------------------------------------------------

    def _span(self, since: datetime, until: datetime) -> Iterator[tuple[str, pa.Table]]:
        """(stream, [account, key, day]) of every record whose time is in [since, until)."""
        first, last = _day(since), _day(until)
        for stream in TIME:
            col = TIME[stream]
            expr = (pc.field(col) >= pa.scalar(since, _TS)) & (pc.field(col) < pa.scalar(until, _TS))
            for day, path in self._days(stream):
                if day == NO_DATE or not first <= day <= last:
                    continue
                table = self._table(path, stream, ["account", "key", col]).filter(expr)
                if table.num_rows:
                    yield stream, table.append_column("day", pc.strftime(table[col], format="%Y-%m-%d"))

    def days(self, since: datetime, until: datetime) -> list[query.DayCount]:
        """Records per day and stream: the time column of each day's file in the span."""
        counts: dict[tuple[str, str], int] = {}
        for stream, table in self._span(since, until):
            for entry in pc.value_counts(table["day"]).to_pylist():
                counts[(entry["values"], stream)] = counts.get((entry["values"], stream), 0) + entry["counts"]
        return [query.DayCount(day, stream, n) for (day, stream), n in sorted(counts.items())]

    def day_keys(self, since: datetime, until: datetime) -> Iterator[tuple[str, str, str, str]]:
        for stream, table in self._span(since, until):
            for account, key, day in zip(*(table[c].to_pylist() for c in ("account", "key", "day")), strict=True):
                yield stream, account, key, day


def _fields(filters: query.Filters, stream: str) -> set[str]:
    """The columns the search's expression reads."""
    out = set()
    if filters.phone:
        out |= {"from_e164", "to_e164"}
    if filters.direction:
        out.add("direction")
    if filters.kind:
        out.add("type")
    if stream == "call-log":
        out |= {"result"} if filters.result else set()
        out |= {"extension_id"} if filters.extension else set()
        out |= {"recording_id"} if filters.has_recording else set()
    return out


def _day(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return date(moment.year, moment.month, moment.day).isoformat()


def _json(text: Any) -> Any:
    return rcetl.json_loads(text) if isinstance(text, str) else {}


def _hit(stream: str, row: Mapping[str, Any], data: Mapping[str, Any]) -> query.Hit:
    return query.hit_from_json(stream, row["account"], row["key"], row.get(TIME[stream]), data, bool(row["deleted"]))
