"""Batch GET (comma-separated ids in the path) and its 207 multipart answers (reference §2.4).

One Light request fetches up to ``MAX_BATCH`` messages instead of one request each. The default
answer is ``multipart/mixed``: a status summary part, then one JSON body per id in request order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import rcetl

if TYPE_CHECKING:
    import requests

MAX_BATCH = 50  # the documented maximum for call-log batches; message batches state none (CMN-106)


@dataclass
class BatchItem:
    resource_id: str
    status: int
    body: Any


def parse_batch(response: requests.Response, ids: Sequence[Any]) -> list[BatchItem]:
    """The per-id results of a batch response; a single id answers with a plain 200 JSON body."""
    content_type = response.headers.get("Content-Type", "")
    if response.status_code == 200 and "multipart" not in content_type:
        return [BatchItem(str(ids[0]), 200, json.loads(response.content))]
    if "vnd.ringcentral.multipart+json" in content_type:
        return [
            BatchItem(str(e.get("resourceId")), int(e.get("status", 0)), e.get("body"))
            for e in json.loads(response.content)
        ]
    if "multipart/mixed" not in content_type:
        raise rcetl.TransientError(f"unexpected batch response type {content_type!r}")
    return parse_multipart_mixed(content_type, response.content, ids)


def _payload(part: Any) -> bytes:
    """A part's decoded body (``get_payload(decode=True)`` is typed loosely by the email package)."""
    import email.message

    payload = part.get_payload(decode=True) if isinstance(part, email.message.Message) else None
    return payload if isinstance(payload, bytes) and payload else b"null"


def parse_multipart_mixed(content_type: str, body: bytes, ids: Sequence[Any]) -> list[BatchItem]:
    # The email package is imported here, not at the top: `rcetl validate` imports this module and
    # email.policy alone is a sizeable part of its start-up budget.
    import email.parser
    import email.policy

    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(head + body)
    parts = message.get_payload()
    if not isinstance(parts, list) or not parts:
        raise rcetl.TransientError("malformed batch response: no parts")
    bodies = [json.loads(_payload(p)) for p in parts]
    summary = bodies[0].get("response") if isinstance(bodies[0], dict) else None
    if not isinstance(summary, list) or len(summary) != len(bodies) - 1:
        raise rcetl.TransientError("malformed batch response: summary does not match the parts")
    return [
        BatchItem(str(ids[i]) if i < len(ids) else "", int(entry.get("status", 0)), bodies[i + 1])
        for i, entry in enumerate(summary)
    ]
