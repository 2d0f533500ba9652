"""``--data FILE``: serve exactly the records a user or test gives.

The file is JSON (or a mapping passed to ``Sandbox(data=...)``)::

    {"accounts": [{
        "extensions": [{"id": 101, "extensionNumber": "101", "name": "A", "type": "User"}],   # optional
        "call_log": [{"id": "C1", "startTime": "...Z", "duration": 60, "direction": "Inbound", ...,
                      "recording": {"id": "R1", "type": "Automatic",
                                    "content": {"base64": "..."} | {"size": 1000000, "content_type": "audio/mpeg"}}}],
        "messages": [{"id": 1, "type": "SMS", "creationTime": "...Z", ...,
                      "attachments": [{"id": 11, "type": "Text", "contentType": "text/plain",
                                       "content": {"base64": "aGk="}}]}]}]}

Fields the sandbox itself owns (``uri``, attachment ``uri`` and ``size``, recording ``contentUri``)
are computed; any other field is served verbatim. Accounts not listed get no calls or messages.
"""

from __future__ import annotations

import base64
import json
from functools import partial
from pathlib import Path
from typing import Any

from . import binaries
from .generator import AccountGenerator, apply_retention
from .model import AccountData, Attachment, Call, Extension, Message, Recording
from .render import parse_iso

_CALL_OWN = {"uri", "id", "sessionId", "telephonySessionId", "startTime", "duration", "durationMs", "type", "direction",
             "action", "result", "reason", "from", "to", "extension", "recording", "transport", "lastModifiedTime", "deleted"}
_MSG_OWN = {"uri", "id", "extensionId", "to", "from", "type", "creationTime", "readStatus", "attachments", "direction",
            "availability", "subject", "messageStatus", "conversationId", "conversation", "lastModifiedTime"}


def load_data(source: Any, gens: list[AccountGenerator]) -> list[AccountData]:
    doc = json.loads(Path(source).read_text("utf-8")) if isinstance(source, (str, Path)) else source
    given = doc.get("accounts", [])
    out = []
    for i, gen in enumerate(gens):
        spec = given[i] if i < len(given) else {}
        out.append(_account(gen, spec))
    return out


def _party(p: dict | None) -> tuple:
    p = p or {}
    return (p.get("phoneNumber"), p.get("extensionNumber"), p.get("extensionId"), p.get("name"), p.get("location"))


def _blob(gen: AccountGenerator, ident: str, content: dict | None, default_type: str):
    content = content or {}
    ctype = content.get("content_type", default_type)
    if "base64" in content:
        return partial(binaries.raw, base64.b64decode(content["base64"]), ctype)
    return partial(binaries.filler, gen.key, ident, int(content.get("size", 1024)), ctype)


def _account(gen: AccountGenerator, spec: dict) -> AccountData:
    data = gen.data
    if "account_id" in spec:
        data.account_id = str(spec["account_id"])
    if spec.get("extensions"):
        data.extensions = [Extension(int(e["id"]), e.get("extensionNumber"), e.get("name", ""), e.get("type", "User"),
                                     e.get("status", "Enabled")) for e in spec["extensions"]]
        data.owner_extension_id = data.extensions[0].id
    else:
        data.extensions = gen.extensions()
    for rec in spec.get("call_log", []):
        data.add_call(_call(gen, data, rec))
    for rec in spec.get("messages", []):
        data.add_message(_message(gen, data, rec))
    apply_retention(data, gen.anchor_ms)
    return data


def _call(gen: AccountGenerator, data: AccountData, rec: dict) -> Call:
    start = parse_iso(rec["startTime"])
    duration_ms = int(rec.get("durationMs", int(rec.get("duration", 0)) * 1000))
    ext = rec.get("extension", {}).get("id", data.owner_extension_id)
    call = Call(
        id=str(rec["id"]), session_id=str(rec.get("sessionId", rec["id"])),
        telephony_session_id=rec.get("telephonySessionId", f"s-{rec['id']}"), start_ms=start, duration_ms=duration_ms,
        type=rec.get("type", "Voice"), direction=rec.get("direction", "Inbound"), action=rec.get("action", "Phone Call"),
        result=rec.get("result"), reason=rec.get("reason"), from_party=_party(rec.get("from")), to_party=_party(rec.get("to")),
        extension_id=ext, transport=rec.get("transport", "PSTN"),
        last_modified_ms=parse_iso(rec["lastModifiedTime"]) if "lastModifiedTime" in rec else start + duration_ms,
        seq=data.next_seq(), deleted=bool(rec.get("deleted", False)),
        extra={k: v for k, v in rec.items() if k not in _CALL_OWN} or None,
    )
    if rec.get("recording"):
        r = rec["recording"]
        blob = _blob(gen, str(r["id"]), r.get("content"), "audio/mpeg")
        b = blob()
        call.recording = Recording(str(r["id"]), call.id, r.get("type", "Automatic"), duration_ms // 1000, blob, b.size, b.content_type)
    return call


def _message(gen: AccountGenerator, data: AccountData, rec: dict) -> Message:
    mid = int(rec["id"])
    created = parse_iso(rec["creationTime"])
    atts = []
    for a in rec.get("attachments", []):
        blob = _blob(gen, f"att{a['id']}", a.get("content"), a.get("contentType", "application/octet-stream"))
        b = blob()
        extra = {k: v for k, v in a.items() if k not in {"id", "uri", "type", "contentType", "fileName", "size", "content", "vmDuration"}}
        atts.append(Attachment(int(a["id"]), mid, a.get("type", "Text"), b.content_type, blob, b.size, a.get("fileName"),
                               a.get("vmDuration"), extra or None))
    to = rec.get("to", [])
    return Message(
        id=mid, extension_id=int(rec.get("extensionId", data.owner_extension_id)), type=rec.get("type", "SMS"),
        direction=rec.get("direction", "Inbound"), creation_ms=created,
        last_modified_ms=parse_iso(rec["lastModifiedTime"]) if "lastModifiedTime" in rec else created,
        seq=data.next_seq(), from_party=_party(rec.get("from")), to_parties=[_party(p) for p in to],
        conversation_id=rec.get("conversationId"), subject=rec.get("subject"), attachments=atts,
        availability=rec.get("availability", "Alive"), read_status=rec.get("readStatus", "Unread"),
        message_status=rec.get("messageStatus", "Received"), fields={k: v for k, v in rec.items() if k not in _MSG_OWN},
    )
