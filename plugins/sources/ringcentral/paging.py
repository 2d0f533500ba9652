"""Offset-paged list endpoints (call log, extensions, message store).

Follows ``navigation.nextPage.uri`` exactly as the server wrote it (it carries every filter) and
never asks for a page twice. Call-log lists omit totals and may announce a ``nextPage`` on what is
really the last page, so the stop rule is: no records, fewer records than ``perPage``, or no
``nextPage`` (reference §2.1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

#: fetch(url, params) -> parsed JSON page; params only for the first page.
FetchPage = Callable[[str, Mapping[str, Any] | None], Mapping[str, Any]]


def iter_pages(fetch: FetchPage, url: str, params: Mapping[str, Any] | None = None) -> Iterator[Mapping[str, Any]]:
    """Yield each page of a list once, in server order."""
    requested = _per_page(params)
    seen: set[str] = set()
    next_url: str | None = url
    next_params: Mapping[str, Any] | None = params
    while next_url is not None:
        page = fetch(next_url, next_params)
        seen.add(_page_identity(next_url, next_params))
        yield page
        records = page.get("records") or []
        per_page = _int(page.get("paging", {}).get("perPage")) or requested
        if not records or (per_page is not None and len(records) < per_page):
            return
        nxt = ((page.get("navigation") or {}).get("nextPage") or {}).get("uri")
        if not nxt or _page_identity(nxt, None) in seen:
            return
        next_url, next_params = nxt, None


def iter_records(fetch: FetchPage, url: str, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    for page in iter_pages(fetch, url, params):
        yield from page.get("records") or []


def _per_page(params: Mapping[str, Any] | None) -> int | None:
    return _int((params or {}).get("perPage"))


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _page_identity(url: str, params: Mapping[str, Any] | None) -> str:
    """The same page however it is spelled: a ``:443`` port, parameter order and the ``page`` number
    given by ``params`` or the query do not make two pages different."""
    parts = urlsplit(url)
    query = sorted(parse_qsl(parts.query, keep_blank_values=True))
    for key, value in (params or {}).items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            query.append((key, str(v)))
    if not any(key == "page" for key, _ in query):
        query.append(("page", "1"))  # the first page is page 1 whether or not the URL says so
    query = sorted(set(query))
    host = (parts.hostname or "").lower()
    port = parts.port
    if port in (80, 443):
        port = None
    return f"{host}:{port or ''}{parts.path.rstrip('/')}?{query}"
