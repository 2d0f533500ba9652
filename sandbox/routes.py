"""Every route the sandbox answers, with its RingCentral throttling group (``x-throttling-group``
in the spec; a test checks this table against the spec)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import account, admin, calllog, directory, extensions, media, messages, oauth

V1 = "/restapi/v1.0/account/<acct>"
EXT = V1 + "/extension/<ext>"
DICTIONARY = "/restapi/v1.0/dictionary"


@dataclass(frozen=True)
class Route:
    rule: str
    method: str
    name: str
    group: str | None  # None: not metered
    handler: Callable
    kind: str = "api"  # api | oauth | admin


ROUTES: list[Route] = [
    Route("/restapi/oauth/token", "POST", "token", "Auth", oauth.token, "oauth"),
    Route("/restapi/oauth/revoke", "POST", "revoke", "Auth", oauth.revoke, "oauth"),
    Route(V1, "GET", "account-info", "Light", account.info),
    Route(V1 + "/extension", "GET", "extension-list", "Medium", extensions.list_extensions),
    Route(V1 + "/call-log", "GET", "account-call-log", "Heavy", calllog.list_calls),
    Route(V1 + "/call-log/<ids>", "GET", "account-call-log-record", "Heavy", calllog.get_calls),
    Route(EXT + "/call-log", "GET", "extension-call-log", "Heavy", calllog.list_calls),
    Route(EXT + "/call-log", "DELETE", "extension-call-log-delete", "Heavy", calllog.delete_calls),
    Route(EXT + "/call-log/<ids>", "GET", "extension-call-log-record", "Heavy", calllog.get_calls),
    Route(V1 + "/call-log-sync", "GET", "account-call-log-sync", "Heavy", calllog.sync),
    Route(EXT + "/call-log-sync", "GET", "extension-call-log-sync", "Heavy", calllog.sync),
    Route(V1 + "/call-log-extract-sync", "GET", "call-log-extract-sync", "Heavy", calllog.extract_sync),
    Route(V1 + "/call-recordings", "DELETE", "call-recordings-delete", "Heavy", media.delete_recordings),
    Route(V1 + "/recording/<rid>", "GET", "recording", "Heavy", media.recording),
    Route(V1 + "/recording/<rid>/content", "GET", "recording-content", "Heavy", media.recording_content),
    Route(EXT + "/message-store", "GET", "message-list", "Light", messages.list_messages),
    Route(EXT + "/message-store", "DELETE", "conversation-delete", "Medium", messages.delete_conversations),
    Route(EXT + "/message-store/<ids>", "GET", "message", "Light", messages.get_messages),
    Route(EXT + "/message-store/<ids>", "DELETE", "message-delete", "Medium", messages.delete_messages),
    Route(EXT + "/message-store/<mid>/content/<aid>", "GET", "attachment-content", "Medium", media.attachment_content),
    Route(EXT + "/message-sync", "GET", "message-sync", "Light", messages.sync),
    # Read-only directory and settings endpoints generic clients read during connection checks.
    Route(V1 + "/directory/entries", "GET", "directory-entries", "Medium", directory.directory_entries),
    Route(V1 + "/business-hours", "GET", "account-business-hours", "Light", directory.account_business_hours),
    Route(EXT + "/business-hours", "GET", "extension-business-hours", "Light", directory.extension_business_hours),
    Route(V1 + "/call-queues", "GET", "call-queues", "Medium", directory.call_queues),
    Route(V1 + "/call-monitoring-groups", "GET", "call-monitoring-groups", "Medium", directory.call_monitoring_groups),
    Route(V1 + "/call-recording", "GET", "call-recording-settings", "Light", directory.call_recording_settings),
    Route(V1 + "/answering-rule", "GET", "company-answering-rules", "Medium", directory.company_answering_rules),
    Route(EXT + "/caller-blocking", "GET", "caller-blocking", "Light", directory.caller_blocking),
    Route(EXT + "/caller-blocking/phone-numbers", "GET", "caller-blocking-numbers", "Light", directory.blocked_numbers),
    Route(EXT + "/forwarding-number", "GET", "forwarding-numbers", "Light", directory.forwarding_numbers),
    Route(EXT + "/active-calls", "GET", "extension-active-calls", "Heavy", directory.active_calls),
    Route(DICTIONARY + "/greeting", "GET", "dictionary-greetings", "Medium", directory.dictionary_greetings),
    Route(DICTIONARY + "/fax-cover-page", "GET", "dictionary-fax-cover-pages", "Light", directory.dictionary_fax_cover_pages),
    Route("/sandbox/info", "GET", "admin-info", None, admin.info, "admin"),
    Route("/sandbox/counters", "GET", "admin-counters", None, admin.counters, "admin"),
    Route("/sandbox/ground-truth", "GET", "admin-ground-truth", None, admin.ground_truth, "admin"),
    Route("/sandbox/accounts/<int:index>/calls", "POST", "admin-add-calls", None, admin.add_calls, "admin"),
    Route("/sandbox/accounts/<int:index>/messages", "POST", "admin-add-messages", None, admin.add_messages, "admin"),
    Route("/sandbox/revoke-tokens", "POST", "admin-revoke", None, admin.revoke_tokens, "admin"),
]

# The spec's OpenAPI path (and method) for each API route, for the conformance tests.
SPEC_PATHS = {
    "token": "/restapi/oauth/token",
    "revoke": "/restapi/oauth/revoke",
    "account-info": "/restapi/v1.0/account/{accountId}",
    "extension-list": "/restapi/v1.0/account/{accountId}/extension",
    "account-call-log": "/restapi/v1.0/account/{accountId}/call-log",
    "account-call-log-record": "/restapi/v1.0/account/{accountId}/call-log/{callRecordId}",
    "extension-call-log": "/restapi/v1.0/account/{accountId}/extension/{extensionId}/call-log",
    "extension-call-log-record": "/restapi/v1.0/account/{accountId}/extension/{extensionId}/call-log/{callRecordId}",
    "extension-call-log-delete": "/restapi/v1.0/account/{accountId}/extension/{extensionId}/call-log",
    "call-recordings-delete": "/restapi/v1.0/account/{accountId}/call-recordings",
    "conversation-delete": "/restapi/v1.0/account/{accountId}/extension/{extensionId}/message-store",
    "account-call-log-sync": "/restapi/v1.0/account/{accountId}/call-log-sync",
    "extension-call-log-sync": "/restapi/v1.0/account/{accountId}/extension/{extensionId}/call-log-sync",
    "call-log-extract-sync": "/restapi/v1.0/account/{accountId}/call-log-extract-sync",
    "recording": "/restapi/v1.0/account/{accountId}/recording/{recordingId}",
    "recording-content": "/restapi/v1.0/account/{accountId}/recording/{recordingId}/content",
    "message-list": "/restapi/v1.0/account/{accountId}/extension/{extensionId}/message-store",
    "message": "/restapi/v1.0/account/{accountId}/extension/{extensionId}/message-store/{messageId}",
    "message-delete": "/restapi/v1.0/account/{accountId}/extension/{extensionId}/message-store/{messageId}",
    "attachment-content": "/restapi/v1.0/account/{accountId}/extension/{extensionId}/message-store/{messageId}/content/{attachmentId}",
    "message-sync": "/restapi/v1.0/account/{accountId}/extension/{extensionId}/message-sync",
    "directory-entries": "/restapi/v1.0/account/{accountId}/directory/entries",
    "account-business-hours": "/restapi/v1.0/account/{accountId}/business-hours",
    "extension-business-hours": "/restapi/v1.0/account/{accountId}/extension/{extensionId}/business-hours",
    "call-queues": "/restapi/v1.0/account/{accountId}/call-queues",
    "call-monitoring-groups": "/restapi/v1.0/account/{accountId}/call-monitoring-groups",
    "call-recording-settings": "/restapi/v1.0/account/{accountId}/call-recording",
    "company-answering-rules": "/restapi/v1.0/account/{accountId}/answering-rule",
    "caller-blocking": "/restapi/v1.0/account/{accountId}/extension/{extensionId}/caller-blocking",
    "caller-blocking-numbers": "/restapi/v1.0/account/{accountId}/extension/{extensionId}/caller-blocking/phone-numbers",
    "forwarding-numbers": "/restapi/v1.0/account/{accountId}/extension/{extensionId}/forwarding-number",
    "extension-active-calls": "/restapi/v1.0/account/{accountId}/extension/{extensionId}/active-calls",
    "dictionary-greetings": "/restapi/v1.0/dictionary/greeting",
    "dictionary-fax-cover-pages": "/restapi/v1.0/dictionary/fax-cover-page",
}
