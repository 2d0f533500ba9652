"""Offset-paged list endpoints (call log, extensions, message store).

Follows ``navigation.nextPage.uri`` exactly as the server wrote it (it carries every filter) and
never asks for a page twice (a nextPage back to a page already read is a loop: an error, since
the pages after it are out of reach). Call-log lists omit totals and may announce a ``nextPage`` on what is
really the last page, so the stop rule is: no records, fewer records than ``perPage``, or no
``nextPage`` (reference §2.1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import rcetl

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
        records = page.get("records") if isinstance(page, Mapping) else None
        if not isinstance(records, list):
            return  # the caller reports a page that is not a list of records
        paging = page.get("paging")
        per_page = (_int(paging.get("perPage")) if isinstance(paging, Mapping) else None) or requested
        if not records or (per_page is not None and len(records) < per_page):
            return
        navigation = page.get("navigation") if isinstance(page, Mapping) else None
        nxt = ((navigation or {}).get("nextPage") or {}).get("uri") if isinstance(navigation, Mapping) else None
        if not nxt:
            return
        _same_server(str(nxt), url)
        if _page_identity(str(nxt), None) in seen:
            # A loop: the pages after it (if any) cannot be reached, so the list is not known complete.
            raise rcetl.TransientError(f"{urlsplit(url).path}: nextPage leads back to a page already read "
                                       "(a paging loop); the list is incomplete")
        next_url, next_params = str(nxt), None


def _same_server(nxt: str, first: str) -> None:
    """A nextPage is followed only on the host the list started on: the bearer token goes with it."""
    a, b = urlsplit(nxt), urlsplit(first)
    if a.scheme not in ("http", "https") or (a.hostname or "").lower() != (b.hostname or "").lower() \
            or (a.port or None) != (b.port or None):
        raise rcetl.PermanentError(
            f"{b.path}: nextPage points to another server ({a.scheme}://{a.hostname or ''}); not followed",
        )


def iter_records(fetch: FetchPage, url: str, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    from .payload import records_of

    for page in iter_pages(fetch, url, params):
        yield from records_of(page, urlsplit(url).path)


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
