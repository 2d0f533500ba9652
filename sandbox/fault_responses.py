"""What a faulted answer looks like on the wire: bodies that are not what the route serves,
and connections that end early. The choice of fault is :mod:`faults`'s; this module only writes it.

Each stands for something RingCentral's edge (or a proxy in front of it) really does: a login or
maintenance page with status 200, an error object with status 200, an empty 200, a body cut short
after the headers promised more, and a ``Retry-After`` no client should obey literally.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator

from werkzeug.wrappers import Response

from .errors import ApiError
from .web import JSON_TYPE, dumps

# A hostile Retry-After: about 31 years. Clients must cap it, not sleep on it.
LONG_RETRY_AFTER = "999999999"

LOGIN_PAGE = (
    b"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>RingCentral - Sign In</title></head>\n"
    b"<body><h1>Sign in to RingCentral</h1><p>Our service is undergoing scheduled maintenance. "
    b"Please sign in again later.</p><form method=\"post\" action=\"/login\"><input name=\"username\">"
    b"<input name=\"password\" type=\"password\"><button>Sign In</button></form></body></html>\n"
)
ERROR_BODY = {"errorCode": "CMN-211", "message": "Service Temporarily Unavailable",
              "errors": [{"errorCode": "CMN-211", "message": "Service Temporarily Unavailable"}]}


def long_retry_after(headers: dict[str, str]) -> ApiError:
    """A 429 whose Retry-After is absurd (no penalty is started: the sandbox answers normally next)."""
    return ApiError(429, "CMN-301", "Request rate exceeded", headers={**headers, "Retry-After": LONG_RETRY_AFTER})


def replace_body(kind: str, resp: Response, sock: socket.socket | None) -> Response:
    """The faulted version of a successful response (``kind`` one of faults.BODY_KINDS)."""
    keep = {k: v for k, v in resp.headers.items() if k.lower().startswith(("x-rate-limit", "rcrequestid"))}
    if kind == "html":
        return Response(LOGIN_PAGE, status=200, headers={**keep, "Content-Type": "text/html; charset=utf-8"})
    if kind == "json200":
        return Response(dumps(ERROR_BODY), status=200, headers={**keep, "Content-Type": JSON_TYPE})
    if kind == "empty":
        empty = Response(b"", status=200, headers={**keep, "Content-Type": resp.headers.get("Content-Type", JSON_TYPE)})
        empty.headers["Content-Length"] = "0"
        return empty
    if kind == "truncate":
        size = _length(resp)
        resp.response = cut_short(_chunks(resp), size * 9 // 10, sock, abort=False)
        resp.headers["Content-Length"] = str(size)
        return resp
    raise ValueError(f"not a body fault: {kind}")


def _length(resp: Response) -> int:
    if resp.headers.get("Content-Length"):
        return int(resp.headers["Content-Length"])
    body = b"".join(_chunks(resp))  # JSON answers are already in memory
    resp.response = [body]
    return len(body)


def _chunks(resp: Response) -> Iterator[bytes]:
    """The body as it is now, in bytes (taken before ``resp.response`` is replaced)."""
    body = resp.response
    return (chunk if isinstance(chunk, bytes) else chunk.encode("utf-8") for chunk in body)


def cut_short(body: Iterable[bytes], send: int, sock: socket.socket | None, abort: bool = True) -> Iterator[bytes]:
    """The first ``send`` bytes of ``body``, then the connection goes away. ``abort``: as a flaky
    network does it (the server errors out); otherwise the server just stops and closes."""
    left = send
    for chunk in body:
        if left <= 0:
            break
        yield chunk[:left]
        left -= len(chunk[:left])
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    if abort:
        raise ConnectionAbortedError("sandbox fault: connection dropped")
