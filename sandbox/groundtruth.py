"""Everything the sandbox would serve, with the SHA-256 and size of every binary: the answer
key that archive tests and benchmarks reconcile against (the shape is a contract; see
docs/sandbox.md).

Binaries are keyed by their real identity: a recording by its recording id, an attachment by
(message id, attachment id), since attachment ids repeat across messages. ``key`` spells that
identity as one string; each ``sha256`` is of that binary's own bytes."""

from __future__ import annotations

from typing import Any

from .model import AccountData
from .options import SandboxOptions
from .render import Urls, call_record, extension_json, message_json


def ground_truth(options: SandboxOptions, accounts: list[AccountData], urls: Urls) -> dict[str, Any]:
    return {
        "seed": options.seed,
        "anchor": options.anchor.isoformat().replace("+00:00", "Z"),
        "accounts": [_account(d, urls) for d in accounts],
    }


def _account(d: AccountData, urls: Urls) -> dict[str, Any]:
    with d.lock:
        calls, messages = list(d.calls), list(d.messages)
    calls.reverse()  # newest first, as the list serves them
    messages.reverse()
    recordings = []
    for c in calls:
        r = c.recording
        if r is None:
            continue
        blob = r.blob()
        recordings.append({"key": r.id, "id": r.id, "call_id": c.id, "size": blob.size, "sha256": blob.sha256(),
                           "content_type": blob.content_type, "available": r.available})
    attachments = []
    for m in messages:
        for a in m.attachments:
            blob = a.blob()
            attachments.append({"key": f"{m.id}/{a.id}", "id": a.id, "message_id": m.id, "size": blob.size, "sha256": blob.sha256(),
                                "content_type": blob.content_type, "available": m.availability != "Purged"})
    return {
        "account_id": d.account_id,
        "extensions": [extension_json(e, urls, d.account_id) for e in d.extensions],
        "call_log": [call_record(c, urls, d.account_id, detailed=True) for c in calls],
        "recordings": recordings,
        "messages": [message_json(m, urls, d.account_id) for m in messages],
        "attachments": attachments,
    }
