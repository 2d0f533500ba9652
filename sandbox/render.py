"""Turn model records into the JSON the API serves (field names, types and optional fields as
RingCentral sends them: ids keep their types, absent values are omitted, not null)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .model import Attachment, Call, Extension, Message, Party, Recording

API = "/restapi/v1.0"


@dataclass(frozen=True)
class Urls:
    """Where the platform and media entry points answer; every URI in a payload starts here."""

    server: str
    media: str

    def account(self, account_id: str) -> str:
        return f"{self.server}{API}/account/{account_id}"

    def media_account(self, account_id: str) -> str:
        return f"{self.media}{API}/account/{account_id}"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_iso(value: str) -> int:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError("timezone required")
    return int(dt.timestamp() * 1000)


def _party(p: Party, *, location: bool = True) -> dict[str, Any]:
    phone, number, ext_id, name, loc = p
    out: dict[str, Any] = {}
    if phone is not None:
        out["phoneNumber"] = phone
    if number is not None:
        out["extensionNumber"] = number
    if ext_id is not None:
        out["extensionId"] = ext_id
    if name is not None:
        out["name"] = name
    if loc is not None and location:
        out["location"] = loc
    return out


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
    if call.result is not None:
        out["result"] = call.result
    if call.reason is not None:
        out["reason"] = call.reason
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
    if call.extra:
        out.update(call.extra)
    if detailed:
        out["legs"] = _legs(call, out)
    return out


def _legs(call: Call, rec: dict[str, Any]) -> list[dict[str, Any]]:
    base = {k: rec[k] for k in ("startTime", "duration", "durationMs", "type", "internalType", "direction",
                                 "action", "result", "reason", "to", "from", "transport", "extension", "billing")
            if k in rec}
    if call.extra and "legs" in call.extra:
        return call.extra["legs"]
    first = dict(base, legType="Accept" if call.direction == "Inbound" else "RingDirectly", master=True)
    if call.recording is not None:
        first["recording"] = rec["recording"]
    legs = [first]
    if call.legs > 1:
        second = dict(base, legType="TransferCall" if call.action == "Transfer" else "ExtensionToExtension", master=False)
        legs.append(second)
    return legs


def attachment_json(att: Attachment, urls: Urls, account_id: str, ext_id: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": att.id,
        "uri": f"{urls.media_account(account_id)}/extension/{ext_id}/message-store/{att.message_id}/content/{att.id}",
        "type": att.type,
        "contentType": att.content_type,
    }
    if att.vm_duration is not None:
        out["vmDuration"] = att.vm_duration
    if att.file_name is not None:
        out["fileName"] = att.file_name
    out["size"] = att.size
    if att.extra:
        out.update(att.extra)
    return out


def message_json(msg: Message, urls: Urls, account_id: str, single: bool = False) -> dict[str, Any]:
    base = f"{urls.account(account_id)}/extension/{msg.extension_id}/message-store/{msg.id}"
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
        out["conversation"] = {"uri": f"{urls.account(account_id)}/conversation/{msg.conversation_id}",
                               "id": str(msg.conversation_id)}
    out["lastModifiedTime"] = iso(msg.last_modified_ms)
    out.update(msg.fields)
    if single and msg.type == "VoiceMail":
        out["vmSideRecipients"] = [_party(p) for p in msg.to_parties]
    return out


def message_stub(msg: Message) -> dict[str, Any]:
    """What sync returns for a deleted or purged message: only id and availability."""
    return {"id": msg.id, "availability": msg.availability}


def extension_json(ext: Extension, urls: Urls, account_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {"uri": f"{urls.account(account_id)}/extension/{ext.id}", "id": ext.id}
    if ext.number is not None:
        out["extensionNumber"] = ext.number
    contact: dict[str, Any] = {}
    if ext.first_name:
        contact["firstName"] = ext.first_name
    if ext.last_name:
        contact["lastName"] = ext.last_name
    if ext.email:
        contact["email"] = ext.email
    if contact:
        out["contact"] = contact
    out["name"] = ext.name
    out["type"] = ext.type
    out["status"] = ext.status
    out["hidden"] = False
    return out
