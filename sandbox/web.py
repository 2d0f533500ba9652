"""Response helpers: JSON, offset paging with navigation, multipart batches, byte ranges."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Response

from .binaries import Blob
from .errors import ApiError, invalid_parameter

JSON_TYPE = "application/json; charset=UTF-8"
MULTIPART_JSON = "application/vnd.ringcentral.multipart+json"
MAX_PER_PAGE = 1000


def dumps(obj: Any) -> bytes:
    # ensure_ascii=False: real bodies are UTF-8; Python's json keeps big ints exact.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return bytes_response(dumps(obj), status, headers)


def bytes_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response from already serialised bytes."""
    return Response(body, status=status, headers={"Content-Type": JSON_TYPE, "Content-Language": "en", **(headers or {})})


def records_body(head: dict[str, Any], records: Iterable[bytes], tail: dict[str, Any]) -> bytes:
    """``{**head, "records": [...], **tail}`` with the records already serialised: a page is
    joined from cached bytes instead of being dumped again."""
    out = dumps(head)[:-1] + b',"records":[' + b",".join(records) + b"]"
    rest = dumps(tail)
    return out + (b"," + rest[1:] if len(rest) > 2 else b"}")


def error_response(err: ApiError) -> Response:
    return json_response(err.body(), err.status, err.headers)


def json_body(request) -> Any:
    """The request's JSON body whatever its Content-Type (clients forget it on DELETE), None if empty."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "CMN-101", "Request body is not valid JSON") from None


def int_param(args, name: str, default: int, lo: int = 1, hi: int | None = None, allow_max: bool = False) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    if allow_max and raw == "max":
        return hi or default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_parameter(name, raw) from None
    if value < lo:
        raise invalid_parameter(name, raw)
    return min(value, hi) if hi is not None else value


def bool_param(args, name: str, default: bool) -> bool:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise invalid_parameter(name, raw)


def enum_list(args, name: str, allowed: Iterable[str]) -> set[str] | None:
    values = args.getlist(name)
    if not values:
        return None
    allowed = set(allowed)
    for v in values:
        if v not in allowed:
            raise invalid_parameter(name, v)
    return set(values)


def page_uri(base: str, params: Sequence[tuple[str, str]], page: int) -> str:
    query = [(k, v) for k, v in params if k != "page"] + [("page", str(page))]
    return f"{base}?{urlencode(query)}"


def page_meta(page: int, per_page: int, start: int, count: int, has_next: bool, total: int | None, base: str,
              params: list[tuple[str, str]]) -> dict[str, Any]:
    """``uri``, ``paging`` and ``navigation`` of one page. ``total=None`` is the call-log style:
    no totalPages/totalElements, no lastPage, and nextPage only when another non-empty page exists."""
    paging: dict[str, Any] = {"page": page}
    total_pages = max(1, -(-total // per_page)) if total is not None else 0
    if total is not None:
        paging["totalPages"] = total_pages
    paging["perPage"] = per_page
    if total is not None:
        paging["totalElements"] = total
    if count:
        paging["pageStart"] = start
        paging["pageEnd"] = start + count - 1
    nav: dict[str, Any] = {"firstPage": {"uri": page_uri(base, params, 1)}}
    if has_next:
        nav["nextPage"] = {"uri": page_uri(base, params, page + 1)}
    if page > 1:
        nav["previousPage"] = {"uri": page_uri(base, params, page - 1)}
    if total is not None:
        nav["lastPage"] = {"uri": page_uri(base, params, total_pages)}
    return {"uri": page_uri(base, params, page), "paging": paging, "navigation": nav}


def paged(items: Sequence[Any], render: Callable[[Any], bytes], page: int, per_page: int, base: str,
          params: list[tuple[str, str]], totals: bool) -> bytes:
    """One page of ``items`` as JSON bytes, each record serialised by ``render``."""
    start = (page - 1) * per_page
    chunk = items[start:start + per_page]
    meta = page_meta(page, per_page, start, len(chunk), len(items) > start + per_page,
                     len(items) if totals else None, base, params)
    return records_body({"uri": meta["uri"]}, (render(x) for x in chunk),
                        {"paging": meta["paging"], "navigation": meta["navigation"]})


def boundary_for(ids: str) -> str:
    """A Jersey-style boundary, stable for the same request."""
    n = int(hashlib.md5(ids.encode()).hexdigest()[:12], 16)
    return f"Boundary_{n % 100}_{n // 100 % 10**8}_1351669531796"


def multipart_mixed(entries: list[tuple[str, int, Any]], boundary: str) -> Response:
    """A 207 batch reply as Jersey writes it: a status summary part, then one part per id."""
    summary = {"response": [{"href": href, "status": status, "responseDescription": "OK" if status == 200 else "Not Found"}
                            for href, status, _ in entries]}
    parts = [summary] + [body for _, _, body in entries]
    out = bytearray()
    for part in parts:
        body = part if isinstance(part, bytes) else dumps(part)  # bytes: already serialised
        out += f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode() + body + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return Response(bytes(out), status=207, headers={"Content-Type": f"multipart/mixed; boundary={boundary}"})


def multipart_json(entries: list[tuple[str, int, Any]]) -> Response:
    body = [{"resourceId": rid, "status": status, "body": body} for rid, status, body in entries]
    return Response(dumps(body), status=207, headers={"Content-Type": MULTIPART_JSON})


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end_exclusive) of a single ``bytes=`` range, None for no/ignorable range;
    raises the 416 CMN-107 error when it cannot be satisfied."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                raise ValueError
            return max(0, size - n), size
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start >= size or end <= start:
        raise ApiError(416, "CMN-107", "Requested Range Not Satisfiable", headers={"Content-Range": f"bytes */{size}"})
    return start, min(end, size)


def binary_response(blob: Blob, range_header: str | None, disposition: str | None = None,
                    filename: str | None = None) -> Response:
    size = blob.size
    rng = parse_range(range_header, size)
    headers = {"Content-Type": blob.content_type, "Accept-Ranges": "bytes"}
    if disposition:
        headers["Content-Disposition"] = disposition.lower() + (f'; filename="{filename}"' if filename else "")
    start, end, status = 0, size, 200
    if rng is not None:
        start, end = rng
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    return Response(blob.iter_range(start, end), status=status, headers=headers, direct_passthrough=True)
