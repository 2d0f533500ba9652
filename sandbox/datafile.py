"""``--data FILE``: serve exactly the records a user or test gives.

The file is JSON (or a mapping passed to ``Sandbox(data=...)``)::

    {"accounts": [{
        "account_id": "37439510",                                                              # optional
        "extensions": [{"id": 101, "extensionNumber": "101", "name": "A", "type": "User"}],  # optional
        "call_log": [{"id": "C1", "startTime": "...Z", ..., "recording": {"id": "R1", ...,
                      "content": {"base64": "..."} | {"size": 1000000, "content_type": "audio/mpeg"}}}],
        "messages": [{"id": 1, "creationTime": "...Z", ..., "attachments": [{"id": 1, ..., "content": {...}}]}]}]}

Each of ``extensions``, ``call_log`` and ``messages`` may also be a list response as RingCentral
sends it (``{"records": [...], "navigation": ..., "paging": ...}``): its ``records`` are used.

Every record is kept as given and served as given (numbers exact: Python's JSON parser keeps
integers whole). ``content`` is the sandbox's own key (what a binary's bytes are) and is never
served. The only fields added are those RingCentral derives from where a record is served, and
only when the record lacks them: ``uri`` of calls, messages and extensions, a recording's ``uri``
and ``contentUri``, an attachment's ``uri`` and ``size`` (docs/sandbox.md lists them). Input the
sandbox cannot serve is refused with :class:`DataError`, naming the file, the record and the reason.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from . import binaries
from .binaries import Blob
from .generator import AccountGenerator, apply_retention
from .model import AccountData, Attachment, Call, Extension, Message, Recording
from .render import parse_iso

TOP_KEYS = {"accounts"}
ACCOUNT_KEYS = {"account_id", "extensions", "call_log", "messages"}
CONTENT_KEYS = {"base64", "size", "content_type"}


class DataError(ValueError):
    """A --data file the sandbox cannot serve; the message names the file, the record and why."""


def load_data(source: Any, gens: list[AccountGenerator]) -> list[AccountData]:
    where = str(source) if isinstance(source, (str, Path)) else "data"
    doc = _read(source, where)
    if not isinstance(doc, dict):
        raise DataError(f'{where}: expected an object {{"accounts": [...]}} at the top, not a JSON {type(doc).__name__}')
    if "records" in doc:
        raise DataError(f'{where}: this is a raw list response ({{"records": ..., "navigation": ...}}), not a data '
                        'file; put it in an account: {"accounts": [{"call_log": <the response>}]} '
                        '(or "messages" / "extensions")')
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise DataError(f"{where}: unknown top-level key(s) {', '.join(sorted(map(repr, unknown)))}; "
                        f"a data file has only {', '.join(map(repr, sorted(TOP_KEYS)))}")
    given = doc.get("accounts", [])
    if not isinstance(given, list):
        raise DataError(f"{where}: 'accounts' must be a list of accounts")
    if len(given) > len(gens):
        raise DataError(f"{where}: {len(given)} accounts given but the sandbox serves {len(gens)}; "
                        f"start it with --accounts {len(given)} (accounts={len(given)})")
    return [_Loader(gen, f"{where}: accounts[{i}]").account(given[i] if i < len(given) else {})
            for i, gen in enumerate(gens)]


def _read(source: Any, where: str) -> Any:
    if not isinstance(source, (str, Path)):
        return source
    try:
        text = Path(source).read_text("utf-8")
    except OSError as e:
        raise DataError(f"{where}: cannot read it: {e.strerror or e}") from None
    try:
        return json.loads(text)  # integers stay exact (never through a float)
    except ValueError as e:
        raise DataError(f"{where}: not valid JSON: {e}") from None


class _Loader:
    def __init__(self, gen: AccountGenerator, where: str) -> None:
        self.gen, self.data, self.where = gen, gen.data, where

    def fail(self, what: str, why: str) -> DataError:
        return DataError(f"{self.where}.{what}: {why}")

    def account(self, spec: Any) -> AccountData:
        if not isinstance(spec, dict):
            raise DataError(f"{self.where}: an account must be an object, not a JSON {type(spec).__name__}")
        unknown = set(spec) - ACCOUNT_KEYS
        if unknown:
            raise DataError(f"{self.where}: unknown key(s) {', '.join(sorted(map(repr, unknown)))}; "
                            f"an account has {', '.join(sorted(ACCOUNT_KEYS))}")
        data = self.data
        if "account_id" in spec:
            data.account_id = str(spec["account_id"])
        extensions = self._records(spec, "extensions")
        data.extensions = [self._extension(i, e) for i, e in enumerate(extensions)] if extensions else self.gen.extensions()
        self._unique("extensions", [e.id for e in data.extensions])
        data.owner_extension_id = data.extensions[0].id
        calls = [self._call(i, rec) for i, rec in enumerate(self._records(spec, "call_log"))]
        self._unique("call_log", [c.id for c in calls])
        self._unique("call_log", [c.recording.id for c in calls if c.recording is not None], "recording id")
        for c in calls:
            data.add_call(c)
        messages = [self._message(i, rec) for i, rec in enumerate(self._records(spec, "messages"))]
        self._unique("messages", [m.id for m in messages])
        for m in messages:
            data.add_message(m)
        apply_retention(data, self.gen.anchor_ms)
        return data

    def _records(self, spec: dict, key: str) -> list:
        value = spec.get(key, [])
        if isinstance(value, dict) and isinstance(value.get("records"), list):
            value = value["records"]  # a list response as RingCentral sends it
        if not isinstance(value, list):
            raise self.fail(key, 'must be a list of records (or a list response {"records": [...]})')
        return value

    def _unique(self, key: str, ids: list, what: str = "id") -> None:
        seen: set = set()
        for i in ids:
            if i in seen:
                raise self.fail(key, f"two records have the {what} {i!r}; each must be served once")
            seen.add(i)

    def _object(self, what: str, rec: Any, required: tuple[str, ...]) -> dict:
        if not isinstance(rec, dict):
            raise self.fail(what, f"a record must be an object, not a JSON {type(rec).__name__}")
        for key in required:
            if rec.get(key) in (None, ""):
                raise self.fail(what, f"missing {key!r}, which the sandbox needs to serve it")
        return rec

    def _time(self, what: str, rec: dict, key: str) -> int:
        try:
            return parse_iso(str(rec[key]))
        except (ValueError, KeyError):
            raise self.fail(what, f"{key} {rec.get(key)!r} is not an ISO 8601 time with a zone "
                                  "(e.g. 2026-01-10T10:00:00.000Z)") from None

    def _int_id(self, what: str, value: Any, key: str = "id") -> int:
        try:
            return int(value) if not isinstance(value, bool) else int("x")
        except (TypeError, ValueError):
            raise self.fail(what, f"{key} {value!r} must be a whole number (RingCentral sends int64 ids here)") from None

    # --- records -------------------------------------------------------------------------------

    def _extension(self, i: int, raw: Any) -> Extension:
        what = f"extensions[{i}]"
        raw = self._object(what, raw, ("id",))
        contact = raw.get("contact") if isinstance(raw.get("contact"), dict) else {}
        return Extension(self._int_id(what, raw["id"]), raw.get("extensionNumber"), raw.get("name", ""),
                         raw.get("type", "User"), raw.get("status", "Enabled"), first_name=contact.get("firstName"),
                         last_name=contact.get("lastName"), email=contact.get("email"), raw=raw)

    def _call(self, i: int, raw: Any) -> Call:
        what = f"call_log[{i}]"
        raw = self._object(what, raw, ("id", "startTime"))
        what = f"call_log[{i}] (id {raw['id']!r})"
        start = self._time(what, raw, "startTime")
        duration_ms = raw.get("durationMs")
        if not isinstance(duration_ms, int):
            duration_ms = int(raw["duration"]) * 1000 if isinstance(raw.get("duration"), int) else 0
        ext = raw.get("extension")
        owner = self._int_id(what, ext["id"], "extension.id") if isinstance(ext, dict) and "id" in ext else self.data.owner_extension_id
        seq = self.data.next_seq()
        call = Call(
            id=str(raw["id"]), session_id=str(raw.get("sessionId", "")), telephony_session_id=str(raw.get("telephonySessionId", "")),
            start_ms=start, duration_ms=duration_ms, type=raw.get("type"), direction=raw.get("direction"),
            action=raw.get("action"), result=raw.get("result"), reason=raw.get("reason"),
            from_party=_party(raw.get("from")), to_party=_party(raw.get("to")), extension_id=owner,
            transport=raw.get("transport"),
            last_modified_ms=self._time(what, raw, "lastModifiedTime") if "lastModifiedTime" in raw else start + duration_ms,
            seq=seq, deleted=raw.get("deleted") is True, raw=raw, loaded_seq=seq,
        )
        if raw.get("recording") is not None:
            rec = self._object(f"{what}.recording", raw["recording"], ("id",))
            rid = str(rec["id"])
            seconds = duration_ms // 1000
            blob = self._blob(f"{what}.recording", rec.get("content"), "audio/mpeg",
                              lambda ctype: partial(binaries.wav, self.gen.key, rid, min(seconds, 10), ctype)
                              if ctype in ("audio/wav", "audio/x-wav") else partial(binaries.mp3, self.gen.key, rid, min(seconds, 10)),
                              ("recording", rid))
            b = blob()
            call.recording = Recording(rid, call.id, rec.get("type", "Automatic"), seconds, blob, b.size, b.content_type)
        return call

    def _message(self, i: int, raw: Any) -> Message:
        what = f"messages[{i}]"
        raw = self._object(what, raw, ("id", "creationTime"))
        mid = self._int_id(what, raw["id"])
        what = f"messages[{i}] (id {raw['id']!r})"
        created = self._time(what, raw, "creationTime")
        owner = self._int_id(what, raw["extensionId"], "extensionId") if "extensionId" in raw else self.data.owner_extension_id
        if self.data.extension(owner) is None:
            raise self.fail(what, f"extensionId {owner} is not an extension of this account, so no mailbox serves it; "
                                  "add it to the account's extensions")
        atts = [self._attachment(f"{what}.attachments[{j}]", mid, raw, a) for j, a in enumerate(raw.get("attachments") or [])]
        self._unique(f"messages[{i}].attachments", [a.id for a in atts], f"attachment id (message {mid})")
        seq = self.data.next_seq()
        conversation = raw.get("conversationId")
        return Message(
            id=mid, extension_id=owner, type=raw.get("type"), direction=raw.get("direction"), creation_ms=created,
            last_modified_ms=self._time(what, raw, "lastModifiedTime") if "lastModifiedTime" in raw else created,
            seq=seq, from_party=_party(raw.get("from")), to_parties=[_party(p) for p in raw.get("to") or []],
            conversation_id=int(conversation) if isinstance(conversation, (int, str)) and str(conversation).isdigit() else None,
            subject=raw.get("subject"), attachments=atts, availability=raw.get("availability", "Alive"),
            read_status=raw.get("readStatus"), message_status=raw.get("messageStatus"), raw=raw, loaded_seq=seq,
        )

    def _attachment(self, what: str, mid: int, msg: dict, raw: Any) -> Attachment:
        raw = self._object(what, raw, ("id",))
        aid = self._int_id(what, raw["id"])
        ctype = raw.get("contentType") or "application/octet-stream"
        content = raw.get("content")
        if content is None and isinstance(raw.get("size"), int):
            content = {"size": raw["size"], "content_type": ctype}
        blob = self._blob(what, content, ctype, lambda t: _made(self.gen.key, mid, aid, t, msg), ("attachment", mid, aid))
        b = blob()
        if isinstance(raw.get("size"), int) and raw["size"] != b.size:
            raise self.fail(what, f"size {raw['size']} but its content has {b.size} bytes; give one or make them agree")
        served = {k: v for k, v in raw.items() if k != "content"}
        return Attachment(aid, mid, raw.get("type"), b.content_type, blob, b.size, raw.get("fileName"),
                          raw.get("vmDuration"), served)

    def _blob(self, what: str, content: Any, default_type: str, make: Callable[[str], Callable[[], Blob]],
              ident: tuple) -> Callable[[], Blob]:
        """The recipe for a binary's bytes: given (base64), of a given size (filler seeded from
        its owner, not its id alone), or made in its content type's real format."""
        if content is None:
            return make(default_type)
        if not isinstance(content, dict) or not set(content) <= CONTENT_KEYS or not ({"base64", "size"} & set(content)):
            raise self.fail(what, 'content must be {"base64": "..."} or {"size": N}, optionally with "content_type"')
        ctype = str(content.get("content_type", default_type))
        if "base64" in content:
            try:
                return partial(binaries.raw, base64.b64decode(content["base64"], validate=True), ctype)
            except (binascii.Error, TypeError, ValueError):
                raise self.fail(what, "content.base64 is not valid base64") from None
        size = content["size"]
        if not isinstance(size, int) or size < 0:
            raise self.fail(what, f"content.size {size!r} must be a whole number of bytes")
        return partial(binaries.filler, self.gen.key, ident, size, ctype)


def _made(key: tuple, mid: int, aid: int, ctype: str, msg: dict) -> Callable[[], Blob]:
    """An attachment's bytes in its content type's real format, seeded from (message, attachment)."""
    ident = f"{mid}/{aid}"
    given_pages = msg.get("faxPageCount")
    pages = given_pages if isinstance(given_pages, int) else 1
    makers: dict[str, Callable[[], Blob]] = {
        "audio/x-wav": partial(binaries.wav, key, ident, 3, "audio/x-wav"),
        "audio/wav": partial(binaries.wav, key, ident, 3, "audio/wav"),
        "audio/mpeg": partial(binaries.mp3, key, ident, 3),
        "application/pdf": partial(binaries.pdf, key, ident, pages),
        "image/tiff": partial(binaries.tiff, key, ident, pages),
        "image/png": partial(binaries.png, key, ident),
        "image/jpeg": partial(binaries.jpeg, key, ident),
        "image/gif": partial(binaries.gif, key, ident),
    }
    if ctype in makers:
        return makers[ctype]
    if ctype.startswith("text/"):
        subject = msg.get("subject")
        text = subject if isinstance(subject, str) else f"message {mid} attachment {aid}"
        return partial(binaries.raw, text.encode("utf-8"), ctype)
    return partial(binaries.filler, key, ("attachment", mid, aid), 1024, ctype)


def _party(p: Any) -> tuple:
    p = p if isinstance(p, dict) else {}
    return (p.get("phoneNumber"), p.get("extensionNumber"), p.get("extensionId"), p.get("name"), p.get("location"))
