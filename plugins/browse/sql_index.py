"""Browse queries over the ``sql`` sink's tables (SQLite, MySQL/MariaDB, PostgreSQL, SQL Server).

Every search is an indexed query with keyset paging (``ORDER BY time DESC, id DESC`` and a cursor),
never ``OFFSET``: page 2,000 of a million calls costs what page 1 costs. The indexes that serve
each filter are the sink's (docs/sinks/databases.md, "Indexes for search"): phone numbers by the
E.164 columns with time, extension with time, time alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .query import (
    Binary,
    DayCount,
    Detail,
    Filters,
    Hit,
    Page,
    binaries_from_archive,
    decode_cursor,
    encode_cursor,
)


def _json(value: Any) -> Any:
    if isinstance(value, (bytes, str)):
        import json

        return json.loads(value)
    return value


class SqlArchiveIndex:
    """:class:`~rcetl.plugins.browse.query.ArchiveIndex` over a ``SqlSink``'s engine and tables."""

    def __init__(self, sink: Any) -> None:
        self.engine: sa.Engine = sink.engine
        self.t = sink.tables

    # --- searches ----------------------------------------------------------------------------

    def _page(self, stmt: sa.Select, time_col: sa.ColumnElement, id_col: sa.ColumnElement,
              filters: Filters, make: Any) -> Page:
        if filters.cursor:
            at, ident = decode_cursor(filters.cursor)
            if at is not None:
                stmt = stmt.where(sa.or_(time_col < at, sa.and_(time_col == at, id_col < _typed(id_col, ident))))
        stmt = stmt.order_by(time_col.desc(), id_col.desc()).limit(filters.limit + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        hits = [make(r) for r in rows[: filters.limit]]
        more = len(rows) > filters.limit
        return Page(hits, encode_cursor(hits[-1].time, hits[-1].id) if more and hits else None)

    @staticmethod
    def _shared(stmt: sa.Select, c: Any, time_col: sa.ColumnElement, filters: Filters) -> sa.Select:
        """The filters calls and messages have in common: numbers, names, direction, dates."""
        if filters.phone:
            stmt = stmt.where(sa.or_(c.from_e164 == filters.phone, c.to_e164 == filters.phone))
        if filters.name:
            like = f"%{_escape_like(filters.name)}%"
            stmt = stmt.where(sa.or_(c.from_name.like(like, escape="\\"), c.to_name.like(like, escape="\\")))
        if filters.direction:
            stmt = stmt.where(c.direction == filters.direction)
        if filters.since:
            stmt = stmt.where(time_col >= _naive(filters.since))
        if filters.until:
            stmt = stmt.where(time_col < _naive(filters.until))
        return stmt

    def search_calls(self, filters: Filters) -> Page:
        c = self.t.call_log.c
        stmt = self._shared(sa.select(c.account, c.id, c.start_time, c.type, c.direction, c.from_number, c.from_name,
                                      c.to_number, c.to_name, c.result, c.duration, c.recording_id, c.deleted),
                            c, c.start_time, filters)
        if filters.extension:
            # the mailbox the call belongs to (indexed with time); legs name the other extensions
            stmt = stmt.where(c.extension_id == int(filters.extension))
        if filters.call_types():
            stmt = stmt.where(c.type.in_(filters.call_types()))
        if filters.result:
            stmt = stmt.where(c.result == filters.result)
        if filters.has_recording:
            stmt = stmt.where(c.recording_id.is_not(None))
        return self._page(stmt, c.start_time, c.id, filters, _call_hit)

    def search_messages(self, filters: Filters) -> Page:
        m = self.t.messages.c
        stmt = self._shared(sa.select(m.account, m.id, m.creation_time, m.type, m.direction, m.from_number,
                                      m.from_name, m.to_number, m.to_name, m.subject, m.deleted),
                            m, m.creation_time, filters)
        if filters.extension:
            stmt = stmt.where(m.from_extension_id == int(filters.extension))
        if filters.message_types():
            stmt = stmt.where(m.type.in_(filters.message_types()))
        return self._page(stmt, m.creation_time, m.id, filters, _message_hit)

    # --- details -----------------------------------------------------------------------------

    def call(self, account: str, call_id: str) -> Detail | None:
        c, r = self.t.call_log.c, self.t.recordings.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.t.call_log).where(c.account == account, c.id == call_id)).mappings().first()
            if row is None:
                return None
            recs = conn.execute(sa.select(r.archive).where(r.account == account, r.call_id == call_id)).all()
        raw = _json(row["raw"]) or {}
        hit = _call_hit(row)
        binaries: list[Binary] = []
        for (archive,) in recs:
            binaries += binaries_from_archive(_json(archive))
        # the legs as RingCentral sent them, in order (the legs table holds typed columns of the same)
        legs = [leg for leg in raw.get("legs") or [] if isinstance(leg, dict)]
        return Detail(hit=hit, raw=raw, legs=legs, binaries=binaries)

    def message(self, account: str, message_id: int) -> Detail | None:
        m, a = self.t.messages.c, self.t.attachments.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.t.messages).where(m.account == account, m.id == message_id)
                               ).mappings().first()
            if row is None:
                return None
            names = {str(blob_id): name for blob_id, name in conn.execute(
                sa.select(a.blob_id, a.file_name).where(a.account == account, a.message_id == message_id))}
        raw = _json(row["raw"]) or {}
        conversation = (raw.get("conversation") or {}).get("id") or raw.get("conversationId")
        return Detail(hit=_message_hit(row), raw=raw, binaries=binaries_from_archive(_json(row["archive"]), names),
                      conversation_id=str(conversation) if conversation is not None else None)

    def thread(self, account: str, conversation_id: str, limit: int = 200) -> list[Hit]:
        m = self.t.messages.c
        try:
            conv = int(conversation_id)
        except ValueError:
            return []
        stmt = (sa.select(m.account, m.id, m.creation_time, m.type, m.direction, m.from_number, m.from_name,
                          m.to_number, m.to_name, m.subject, m.deleted)
                .where(m.account == account, m.conversation_id == conv).order_by(m.creation_time).limit(limit))
        with self.engine.connect() as conn:
            return [_message_hit(r) for r in conn.execute(stmt).mappings()]

    def _streams(self) -> list[tuple[str, sa.Table, sa.ColumnElement]]:
        return [("call-log", self.t.call_log, self.t.call_log.c.start_time),
                ("message-store", self.t.messages, self.t.messages.c.creation_time),
                ("recording", self.t.recordings, self.t.recordings.c.start_time)]

    def _day(self, col: sa.ColumnElement) -> sa.ColumnElement:
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            return sa.func.substr(sa.cast(col, sa.String), 1, 10)
        return sa.cast(col, sa.Date) if dialect == "mssql" else sa.func.date(col)

    def days(self, since: datetime, until: datetime) -> list[DayCount]:
        """Records per day and stream (the coverage calendar), from the time indexes."""
        out: list[DayCount] = []
        for stream, table, col in self._streams():
            day = self._day(col)
            stmt = (sa.select(day.label("day"), sa.func.count().label("n")).select_from(table)
                    .where(col >= _naive(since), col < _naive(until)).group_by(day))
            with self.engine.connect() as conn:
                for d, n in conn.execute(stmt):
                    out.append(DayCount(str(d)[:10], stream, int(n)))
        return out

    def day_keys(self, since: datetime, until: datetime) -> Iterator[tuple[str, str, str, str]]:
        for stream, table, col in self._streams():
            stmt = (sa.select(table.c.account, table.c.id, self._day(col)).where(col >= _naive(since),
                                                                                  col < _naive(until)))
            with self.engine.connect() as conn:
                for account, ident, day in conn.execute(stmt.execution_options(yield_per=10_000)):
                    yield stream, account, str(ident), str(day)[:10]


def _naive(moment: datetime) -> datetime:
    # the sink stores naive UTC (portable across dialects)
    return moment.replace(tzinfo=None) if moment.tzinfo else moment


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _typed(col: sa.ColumnElement, ident: str) -> Any:
    return int(ident) if isinstance(col.type, (sa.Integer, sa.BigInteger)) and ident.lstrip("-").isdigit() else ident


def _call_hit(r: Any) -> Hit:
    return Hit(stream="call-log", id=str(r["id"]), account=r["account"], time=r["start_time"], type=r["type"],
               direction=r["direction"], from_number=r["from_number"], from_name=r["from_name"],
               to_number=r["to_number"], to_name=r["to_name"], result=r["result"], duration=r["duration"],
               has_recording=r["recording_id"] is not None, deleted=bool(r["deleted"]))


def _message_hit(r: Any) -> Hit:
    return Hit(stream="message-store", id=str(r["id"]), account=r["account"], time=r["creation_time"],
               type=r["type"], direction=r["direction"], from_number=r["from_number"], from_name=r["from_name"],
               to_number=r["to_number"], to_name=r["to_name"], subject=r["subject"], deleted=bool(r["deleted"]))
