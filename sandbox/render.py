"""Turn model records into the JSON the API serves (field names, types and optional fields as
RingCentral sends them: ids keep their types, absent values are omitted, not null)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from .model import Attachment, Call, Extension, Message, Party, Recording
from .web import dumps

API = "/restapi/v1.0"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_j = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # one JSON value, as dumps writes it


@dataclass(frozen=True)
class Urls:
    """Where the platform and media entry points answer; every URI in a payload starts here."""

    server: str
    media: str

    def account(self, account_id: str) -> str:
        return f"{self.server}{API}/account/{account_id}"

    def media_account(self, account_id: str) -> str:
        return f"{self.media}{API}/account/{account_id}"


@lru_cache(maxsize=4096)
def _day(days: int) -> str:
    return (_EPOCH + timedelta(days=days)).strftime("%Y-%m-%dT")


def iso(ms: int) -> str:
    days, rest = divmod(ms, 86_400_000)
    secs, milli = divmod(rest, 1000)
    hours, secs = divmod(secs, 3600)
    minutes, secs = divmod(secs, 60)
    return f"{_day(days)}{hours:02d}:{minutes:02d}:{secs:02d}.{milli:03d}Z"


def parse_iso(value: str) -> int:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError("timezone required")
    return int(dt.timestamp() * 1000)


def _present(out: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """``out`` with the fields that have a value: the API leaves out a field it has no value for."""
    out.update((key, value) for key, value in fields.items() if value is not None)
    return out


def _party(p: Party, *, location: bool = True) -> dict[str, Any]:
    phone, number, ext_id, name, loc = p
    return _present({}, phoneNumber=phone, extensionNumber=number, extensionId=ext_id, name=name,
                    location=loc if location else None)


def recording_ref(rec: Recording, urls: Urls, account_id: str) -> dict[str, Any]:
    return {
        "id": rec.id,
        "uri": f"{urls.account(account_id)}/recording/{rec.id}",
        "type": rec.type,
        "contentUri": f"{urls.media_account(account_id)}/recording/{rec.id}/content",
    }


def recording_info(rec: Recording, urls: Urls, account_id: str) -> dict[str, Any]:
    return {
        "id": rec.id,
        "contentUri": f"{urls.media_account(account_id)}/recording/{rec.id}/content",
        "contentType": rec.content_type,
        "duration": rec.duration,
    }


def call_record(call: Call, urls: Urls, account_id: str, detailed: bool) -> dict[str, Any]:
    if call.raw is not None:
        return _given_call(call, urls, account_id, detailed)
    view = "Detailed" if detailed else "Simple"
    acct = urls.account(account_id)
    out: dict[str, Any] = {
        "uri": f"{acct}/call-log/{call.id}?view={view}",
        "id": call.id,
        "sessionId": call.session_id,
        "telephonySessionId": call.telephony_session_id,
        "startTime": iso(call.start_ms),
        "duration": call.duration_ms // 1000,
        "durationMs": call.duration_ms,
        "type": call.type,
        "internalType": "Usual" if call.transport == "VoIP" else "Local",
        "direction": call.direction,
        "action": call.action,
    }
    _present(out, result=call.result, reason=call.reason)
    out["to"] = _party(call.to_party)
    out["from"] = _party(call.from_party)
    if call.extension_id is not None:
        out["extension"] = {"uri": f"{acct}/extension/{call.extension_id}", "id": call.extension_id}
    if call.recording is not None:
        out["recording"] = recording_ref(call.recording, urls, account_id)
    if call.message is not None:
        mid, mtype = call.message
        out["message"] = {"id": str(mid), "type": mtype, "uri": f"{acct}/extension/{call.extension_id}/message-store/{mid}"}
    out["transport"] = call.transport
    out["lastModifiedTime"] = iso(call.last_modified_ms)
    out["billing"] = {"costIncluded": 0.0, "costPurchased": 0.0}
    if call.deleted:
        out["deleted"] = True
    if detailed:
        out["legs"] = _legs(call, out)
    return out


def call_bytes(call: Call, urls: Urls, account_id: str, detailed: bool) -> bytes:
    """``call_record`` serialised, cached on the call until it changes (every change bumps its
    ``seq``) or the sandbox's URLs do. Written field by field rather than through a dict: a cold
    1,000-record page is the common case for an archiver and must cost milliseconds."""
    def make() -> bytes:
        if call.raw is not None:  # --data records may carry any field: the dict path keeps them exact
            return dumps(call_record(call, urls, account_id, detailed))
        return _call_text(call, urls, account_id, detailed).encode("utf-8")

    return _cached(call, detailed, (urls, account_id, call.seq), make)


def _cached(record: Call | Message, variant: bool, key: tuple, make: Callable[[], bytes]) -> bytes:
    """``make()``, kept on ``record.rendered[variant]`` while ``key`` stays the same."""
    cache = record.rendered
    if cache is None:
        cache = record.rendered = {}
    hit = cache.get(variant)
    if hit is not None and hit[0] == key:
        return hit[1]
    body = make()
    cache[variant] = (key, body)
    return body


def _party_text(p: Party) -> str:
    phone, number, ext_id, name, loc = p
    out = []
    if phone is not None:
        out.append('"phoneNumber":' + _j(phone))
    if number is not None:
        out.append('"extensionNumber":' + _j(number))
    if ext_id is not None:
        out.append('"extensionId":' + _j(ext_id))
    if name is not None:
        out.append('"name":' + _j(name))
    if loc is not None:
        out.append('"location":' + _j(loc))
    return "{" + ",".join(out) + "}"


def _call_text(call: Call, urls: Urls, account_id: str, detailed: bool) -> str:
    """The same JSON as ``dumps(call_record(...))`` (a test holds them equal), as text."""
    acct = urls.account(account_id)
    internal = '"Usual"' if call.transport == "VoIP" else '"Local"'
    # The fields legs repeat, in call_record's order; each leg picks its subset of them.
    timing = (f'"startTime":"{iso(call.start_ms)}","duration":{call.duration_ms // 1000},"durationMs":{call.duration_ms},'
              f'"type":{_j(call.type)},"internalType":{internal},"direction":{_j(call.direction)},"action":{_j(call.action)}')
    outcome = ""
    if call.result is not None:
        outcome += ',"result":' + _j(call.result)
    if call.reason is not None:
        outcome += ',"reason":' + _j(call.reason)
    parties = f',"to":{_party_text(call.to_party)},"from":{_party_text(call.from_party)}'
    ext = f',"extension":{{"uri":{_j(f"{acct}/extension/{call.extension_id}")},"id":{call.extension_id}}}' \
        if call.extension_id is not None else ""
    rec = ""
    if call.recording is not None:
        r = call.recording
        rec = (f',"recording":{{"id":{_j(r.id)},"uri":{_j(f"{acct}/recording/{r.id}")},"type":{_j(r.type)},'
               f'"contentUri":{_j(f"{urls.media_account(account_id)}/recording/{r.id}/content")}}}')
    msg = ""
    if call.message is not None:
        mid, mtype = call.message
        msg = (f',"message":{{"id":{_j(str(mid))},"type":{_j(mtype)},'
               f'"uri":{_j(f"{acct}/extension/{call.extension_id}/message-store/{mid}")}}}')
    transport = ',"transport":' + _j(call.transport)
    billing = ',"billing":{"costIncluded":0.0,"costPurchased":0.0}'
    view = "Detailed" if detailed else "Simple"
    out = (f'{{"uri":{_j(f"{acct}/call-log/{call.id}?view={view}")},"id":{_j(call.id)},"sessionId":{_j(call.session_id)},'
           f'"telephonySessionId":{_j(call.telephony_session_id)},{timing}{outcome}{parties}{ext}{rec}{msg}{transport}'
           f',"lastModifiedTime":"{iso(call.last_modified_ms)}"{billing}')
    if call.deleted:
        out += ',"deleted":true'
    if detailed:
        base = timing + outcome + parties + transport + ext + billing
        first = "Accept" if call.direction == "Inbound" else "RingDirectly"
        legs = f'{{{base},"legType":"{first}","master":true{rec}}}'
        if call.legs > 1:
            second = "TransferCall" if call.action == "Transfer" else "FindMe" if call.legs > 2 else "ExtensionToExtension"
            legs += f',{{{base},"legType":"{second}","master":false}}'
        if call.legs > 2:
            legs += f',{{{base},"legType":"FollowMe","master":false}}'
        out += f',"legs":[{legs}]'
    return out + "}"


def _legs(call: Call, rec: dict[str, Any]) -> list[dict[str, Any]]:
    base: dict[str, Any] = {k: rec[k] for k in ("startTime", "duration", "durationMs", "type", "internalType", "direction",
                                                 "action", "result", "reason", "to", "from", "transport", "extension",
                                                 "billing")
                            if k in rec}
    first = {**base, "legType": "Accept" if call.direction == "Inbound" else "RingDirectly", "master": True}
    if call.recording is not None:
        first["recording"] = rec["recording"]
    legs = [first]
    if call.legs > 1:
        kind = "TransferCall" if call.action == "Transfer" else "FindMe" if call.legs > 2 else "ExtensionToExtension"
        legs.append({**base, "legType": kind, "master": False})
    if call.legs > 2:
        legs.append({**base, "legType": "FollowMe", "master": False})
    return legs


def _attachment_uri(att: Attachment, urls: Urls, account_id: str, ext_id: int) -> str:
    return f"{urls.media_account(account_id)}/extension/{ext_id}/message-store/{att.message_id}/content/{att.id}"


def attachment_json(att: Attachment, urls: Urls, account_id: str, ext_id: int) -> dict[str, Any]:
    if att.raw is not None:
        return _given(att.raw, {"uri": lambda: _attachment_uri(att, urls, account_id, ext_id), "size": lambda: att.size})
    out: dict[str, Any] = {
        "id": att.id,
        "uri": _attachment_uri(att, urls, account_id, ext_id),
        "type": att.type,
        "contentType": att.content_type,
    }
    _present(out, vmDuration=att.vm_duration, fileName=att.file_name)
    out["size"] = att.size
    return out


def message_json(msg: Message, urls: Urls, account_id: str, single: bool = False) -> dict[str, Any]:
    base = f"{urls.account(account_id)}/extension/{msg.extension_id}/message-store/{msg.id}"
    if msg.raw is not None:
        return _given_message(msg, base, urls, account_id)
    out: dict[str, Any] = {"uri": base, "id": msg.id, "extensionId": str(msg.extension_id)}
    out["to"] = [_party(p) for p in msg.to_parties]
    out["from"] = _party(msg.from_party)
    out["type"] = msg.type
    out["creationTime"] = iso(msg.creation_ms)
    out["readStatus"] = msg.read_status
    out["priority"] = "Normal"
    out["attachments"] = [attachment_json(a, urls, account_id, msg.extension_id) for a in msg.attachments]
    out["direction"] = msg.direction
    out["availability"] = msg.availability
    if msg.subject is not None:
        out["subject"] = msg.subject
    out["messageStatus"] = msg.message_status
    if msg.conversation_id is not None:
        out["conversationId"] = msg.conversation_id
        out["conversation"] = conversation_json(msg.conversation_id, urls)
    out["lastModifiedTime"] = iso(msg.last_modified_ms)
    out.update(msg.fields)
    if single and msg.type == "VoiceMail":
        out["vmSideRecipients"] = [_party(p) for p in msg.to_parties]
    return out


def message_bytes(msg: Message, urls: Urls, account_id: str, single: bool = False) -> bytes:
    """``message_json`` serialised, cached like :func:`call_bytes`."""
    return _cached(msg, single, (urls, account_id, msg.seq, msg.availability),
                   lambda: dumps(message_json(msg, urls, account_id, single)))


def message_stub(msg: Message) -> dict[str, Any]:
    """What sync returns for a deleted or purged message: only id and availability."""
    return {"id": msg.id, "availability": msg.availability}


def conversation_json(conversation_id: int, urls: Urls) -> dict[str, Any]:
    """RingCentral's conversation reference: the id as a string (it exceeds 2^53), and a URI at
    ``/restapi/v1.0/conversation/{id}``, not under the account [EX:message-store-list-sms.json]."""
    return {"uri": f"{urls.server}{API}/conversation/{conversation_id}", "id": str(conversation_id)}


def contact_fields(ext: Extension) -> dict[str, Any]:
    """An extension's ``firstName``/``lastName``/``email``, those it has."""
    fields = {"firstName": ext.first_name, "lastName": ext.last_name, "email": ext.email}
    return {k: v for k, v in fields.items() if v}


def extension_json(ext: Extension, urls: Urls, account_id: str) -> dict[str, Any]:
    if ext.raw is not None:
        return _given(ext.raw, {"uri": lambda: f"{urls.account(account_id)}/extension/{ext.id}"})
    out: dict[str, Any] = {"uri": f"{urls.account(account_id)}/extension/{ext.id}", "id": ext.id}
    if ext.number is not None:
        out["extensionNumber"] = ext.number
    contact = contact_fields(ext)
    if contact:
        out["contact"] = contact
    out["name"] = ext.name
    out["type"] = ext.type
    out["status"] = ext.status
    out["hidden"] = False
    return out


# --- records given in a --data file: served as given --------------------------------------------
# The only fields added are those RingCentral derives from where a record is served, and only
# when the record lacks them (docs/sandbox.md, "Loading your own records"); what the sandbox
# itself changed later (a delete) shows over the given value.


def _given(raw: dict[str, Any], derived: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    out = {k: make() for k, make in derived.items() if k not in raw}
    out.update(raw)
    return out


def _given_call(call: Call, urls: Urls, account_id: str, detailed: bool) -> dict[str, Any]:
    raw = call.raw
    assert raw is not None
    view = "Detailed" if detailed else "Simple"
    out = _given(raw, {"uri": lambda: f"{urls.account(account_id)}/call-log/{call.id}?view={view}"})
    if not detailed:
        out.pop("legs", None)  # the Simple view has no legs [SPEC CallLogRecord.legs]
    if call.recording is not None and isinstance(raw.get("recording"), dict):
        rec = call.recording
        out["recording"] = _given(raw["recording"], {
            "uri": lambda: f"{urls.account(account_id)}/recording/{rec.id}",
            "contentUri": lambda: f"{urls.media_account(account_id)}/recording/{rec.id}/content"})
        out["recording"].pop("content", None)
    if call.seq != call.loaded_seq:
        if call.deleted:
            out["deleted"] = True
        out["lastModifiedTime"] = iso(call.last_modified_ms)
    return out


def _given_message(msg: Message, base: str, urls: Urls, account_id: str) -> dict[str, Any]:
    raw = msg.raw
    assert raw is not None
    out = _given(raw, {"uri": lambda: base})
    if "attachments" in raw:
        out["attachments"] = [attachment_json(a, urls, account_id, msg.extension_id) for a in msg.attachments]
    if msg.seq != msg.loaded_seq:
        out["availability"] = msg.availability
        out["lastModifiedTime"] = iso(msg.last_modified_ms)
    return out
