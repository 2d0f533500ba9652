"""RingCentral error responses turned into rcetl errors that say what went wrong."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import rcetl

if TYPE_CHECKING:
    import requests


def error_code(body: Any) -> str | None:
    """The most specific code in an error body: ``errors[0].errorCode``, else the legacy top-level
    ``errorCode``, else OAuth's ``error`` (bodies carry several; see reference §2.2)."""
    if not isinstance(body, dict):
        return None
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict) and errors[0].get("errorCode"):
        return str(errors[0]["errorCode"])
    for key in ("errorCode", "error"):
        if body.get(key):
            return str(body[key])
    return None


def error_message(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict) and errors[0].get("message"):
        return str(errors[0]["message"])
    return body.get("message") or body.get("error_description")


def response_body(response: requests.Response) -> Any:
    """The parsed error body, or None when it is not JSON or the connection dropped mid-body
    (the status alone still decides what happens)."""
    try:
        return json.loads(response.content)
    except (ValueError, _request_exception()):
        return None


class ApiError(rcetl.PermanentError):
    """A 4xx answer RingCentral gives for a request retrying will not fix."""

    def __init__(self, method: str, url: str, status: int, body: Any) -> None:
        self.status = status
        self.code = error_code(body)
        self.body = body
        detail = error_message(body) or ""
        hint = None
        if status == 403:
            hint = "the app or the JWT's user lacks a permission (ReadCallLog, ReadCallRecording, ReadMessages, ReadAccounts)"
        path = url.split("?", 1)[0]
        super().__init__(f"RingCentral {method} {path} -> {status} {self.code or ''} {detail}".rstrip(), hint=hint)


class AuthenticationError(rcetl.PermanentError):
    """The credential was refused even after logging in again with the JWT."""


def _request_exception() -> type[Exception]:
    import requests  # lazily: plugin registration (rcetl --help) must not pay for requests

    return requests.RequestException
