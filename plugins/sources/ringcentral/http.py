"""Every request to RingCentral: through the credential's rate budget, with the bearer token,
retried the way RingCentral asks (Retry-After on 429, exponential backoff on 5xx).

The budget decides *when* a request may leave (``acquire`` waits out windows and penalties), so
nothing here ever sleeps on a 429 itself: a request sent during a penalty would restart it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any, cast
from urllib.parse import urlsplit

import orjson
import requests
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError
from urllib3.exceptions import SSLError as Urllib3SSLError

import rcetl

from .api_errors import ApiError, AuthenticationError, response_body
from .throttling import AUTH, PRIORITY_AUTH, PRIORITY_DOWNLOAD, PRIORITY_LIST, canonical_group, group_for  # noqa: F401 - re-exported
from .tokens import TokenManager
from .transport import BundleOnceAdapter

log = logging.getLogger(__name__)

#: RingCentral's advice when a 429 comes without Retry-After [docs: basics/rate-limits].
DEFAULT_RETRY_AFTER = 30.0
#: 429s in a row for one request before giving up on it for this run (each waits its penalty).
MAX_THROTTLED = 20
RETRYABLE_STATUS = frozenset({408, 500, 502, 503, 504})



def _header_number(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


#: Every digit as ``0``: a 64-bit overflow is then a plain substring search (see ``decode_json``).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")


def decode_json(content: bytes) -> Any:
    """orjson, and the standard parser where orjson would not keep an int exact or refuses the text.

    orjson turns integers beyond 64 bits into floats (ids above 2^53 must stay exact ints), so text
    with a run of 20 digits, or of 19 after a minus sign, goes to ``json.loads``; a run inside a
    string only costs the slower parser. This is ``rcetl.json_loads`` with a cheaper test: its
    regular expression takes ~3x as long as ``json.loads`` itself on a 1,000-record page, a
    translation and two substring searches ~1/10 (measured; requests.md asks core to adopt it).
    What orjson refuses is parsed again by ``json.loads``, which raises the standard errors."""
    shape = content.translate(_DIGITS_AS_ZERO)
    if b"00000000000000000000" not in shape and b"-0000000000000000000" not in shape:
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            pass
    return json.loads(content)


def parse_json(content: bytes, what: str) -> Any:
    """Parse exactly (``decode_json``: integers of any size stay exact ints, never floats); a body
    that is not JSON is named in one line: HTML (a proxy's error page), invalid UTF-8, truncated, or
    nested too deep to be real. orjson, not only ``json.loads``: decoding pages was ~40 % of the
    page reader's time (holding the GIL the sink writer needs)."""
    try:
        return decode_json(content)
    except UnicodeDecodeError as exc:
        raise rcetl.TransientError(f"RingCentral sent a body that is not valid UTF-8 for {what}") from exc
    except RecursionError as exc:
        raise rcetl.TransientError(f"RingCentral sent JSON nested too deep to be an API answer for {what}") from exc
    except ValueError as exc:
        head = content[:200].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html", b"<")):
            raise rcetl.TransientError(f"RingCentral sent HTML, not JSON, for {what}") from exc
        kind = "an empty body" if not content.strip() else f"a truncated or malformed JSON body ({len(content)} bytes)"
        raise rcetl.TransientError(f"RingCentral sent {kind}, not JSON, for {what}") from exc


def _read_whole(response: requests.Response) -> None:
    """The body of ``response`` (sent with ``stream=True``) read in one read, as ``content``.

    What requests does without ``stream``, but in one read instead of ~160 of 10 KB for a 1.6 MB
    call-log page, each of which gave the GIL up and waited to take it back from the thread that
    builds rows (the page reader's CPU per page 4.5-5.6 -> 1.7-2.3 ms; under a busy thread its
    wall 65-74 -> 45-59 ms). urllib3's errors become requests' own, as its chunked read makes
    them: a body cut short is a ChunkedEncodingError (a dropped connection, sent again)."""
    try:
        body = response.raw.read(decode_content=True)
    except ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from exc
    except DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    except ReadTimeoutError as exc:
        raise requests.ConnectionError(exc) from exc
    except Urllib3SSLError as exc:
        raise requests.exceptions.SSLError(exc) from exc
    response._content = body or b""
    response._content_consumed = True  # type: ignore[attr-defined]  # as requests sets it


def _seconds(value: float) -> str:
    """A wait as a person reads it: ``999,999,999 s (about 31.7 years)``."""
    text = f"{value:,.0f} s"
    for unit, size in (("years", 365.25 * 86400), ("days", 86400.0), ("hours", 3600.0)):
        if value >= 2 * size:
            return f"{text} (about {value / size:,.1f} {unit})"
    return text


class ApiClient:
    """One pooled session and one budget for one credential; safe to share between threads."""

    def __init__(
        self,
        *,
        budget: rcetl.Budget,
        tokens_factory,
        basic_auth: tuple[str, str],
        time_scale: float,
        timeout: float,
        verify_tls: bool,
        pool_size: int,
        max_retries: int,
        backoff_cap: float,
        trusted_hosts: frozenset[str],
        max_download_bytes: int = 8 << 30,
        sleep=None,
        stop: rcetl.StopSignal | None = None,
    ) -> None:
        self.budget = budget
        self.time_scale = time_scale
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_cap = backoff_cap
        self.trusted_hosts = trusted_hosts
        self.max_download_bytes = max_download_bytes
        self._basic = basic_auth
        #: The run's stop signal: backoff sleeps and long transfers end as soon as the run stops.
        self.stop = stop or rcetl.stop_signal(None)
        self._sleep = sleep or self.stop.sleep
        self.session = requests.Session()
        adapter = BundleOnceAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        # The environment (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE...) is read here, once, not
        # by requests on every request (its merge_environment_settings scans os.environ and the
        # no-proxy list each time: ~5 % of a download thread's time). Proxies are resolved once per
        # scheme and host (``_proxies``); a ~/.netrc, which requests would also read per request and
        # let replace the Authorization header, is never used.
        self.session.trust_env = False
        self.session.verify = (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True) \
            if verify_tls else False
        self._proxies_by_origin: dict[str, dict[str, str]] = {}
        self.session.headers["User-Agent"] = f"rcetl/{rcetl.__version__}"
        self.tokens: TokenManager = tokens_factory(self._post_token)
        self.counts: dict[str, int] = {}  # responses by status, for summaries and tests
        self._counts_lock = threading.Lock()

    def close(self) -> None:
        self.session.close()

    # --- requests --------------------------------------------------------------------------------

    def get_json(self, url: str, params: Mapping[str, Any] | None = None, *, priority: int = PRIORITY_LIST) -> Any:
        """GET and parse JSON with the standard parser, which keeps integers exact (never a float)."""
        response = self.request("GET", url, params=params, priority=priority)
        return parse_json(response.content, f"GET {urlsplit(url).path}")

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        priority: int = PRIORITY_LIST,
        stream: bool = False,
        authenticate: bool = True,
    ) -> requests.Response:
        """Send once the budget allows; return a 2xx/3xx response, raise ApiError on other 4xx,
        TransientError when retries of 5xx, dropped connections or 429s are exhausted."""
        group = group_for(method, url)
        if authenticate:
            self._check_trusted(url)
        failures = throttled = 0
        reauthenticated = False
        # A download is built whole before it waits for its slot: once the slot is ours only the
        # token is added. (The first slot of each window times the whole run: what is done between
        # its freeing and the request's departure is paid once a window.)
        streamed = self._streamed(url, headers) if stream and method == "GET" and params is None and data is None \
            else None
        while True:
            send_headers: MutableMapping[str, str] = dict(headers or {}) if streamed is None else streamed.headers
            token = None
            slot = self.budget.acquire(group, priority=PRIORITY_AUTH if group == AUTH else priority)
            # The token is taken once the slot is ours, not before: a request can wait a window or
            # more in the budget's line, and a token taken before that wait may be renewed (and
            # killed) by another thread meanwhile, which wastes the slot on a 401.
            if authenticate:
                try:
                    token = self.tokens.access_token()
                except BaseException:
                    self.budget.release(slot)
                    raise
                send_headers["Authorization"] = f"Bearer {token}"
            else:
                send_headers.setdefault("Accept", "application/json")
            try:
                if streamed is not None:
                    response = self._send_streamed(streamed)
                else:
                    response = self.session.request(
                        method,
                        url,
                        params=params,
                        data=data,
                        headers=send_headers,
                        auth=None if authenticate else self._basic,
                        timeout=self.timeout,
                        stream=True,  # a body not streamed to the caller is read whole just below
                        allow_redirects=False,
                        proxies=self._proxies(url),
                    )
                    if not stream:
                        _read_whole(response)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                # A body cut short counts as a dropped connection (stream=False reads it here).
                self.budget.release(slot)
                failures += 1
                self._count("connection-error")
                self._backoff_or_raise(failures, None, f"{method} {url.split('?')[0]}: {type(exc).__name__}")
                continue

            status = response.status_code
            limit, remaining, window = self._rate_headers(response, group)
            if status == 429:
                retry_after = _header_number(response.headers, "Retry-After")
                asked = DEFAULT_RETRY_AFTER if retry_after is None else retry_after
                # Never more than backoff_cap: the budget holds the group for the capped wait (a
                # request sent during a real penalty would restart it), and a longer ask fails now.
                penalty = min(asked, self.backoff_cap) / self.time_scale
                self.budget.release(slot, limit=limit, remaining=remaining, window=window, retry_after=penalty)
                self._count(str(status))
                response.close()
                if asked > self.backoff_cap:
                    raise self._wait_too_long(group, asked, response.headers.get("Retry-After"), method, url, status)
                throttled += 1
                if throttled > MAX_THROTTLED:
                    raise rcetl.TransientError(f"{method} {url.split('?')[0]}: still rate-limited after {throttled} tries")
                continue  # acquire() waits out the penalty before the retry leaves
            # Released first: the slot is stamped at the response's arrival, and every moment
            # spent before that moves the next window's slot later.
            self.budget.release(slot, limit=limit, remaining=remaining, window=window)
            self._count(str(status))

            if status in RETRYABLE_STATUS:
                retry_after = _header_number(response.headers, "Retry-After")
                response.close()
                if retry_after is not None and retry_after > self.backoff_cap:
                    raise self._wait_too_long(group, retry_after, response.headers.get("Retry-After"), method, url,
                                              status)
                failures += 1
                self._backoff_or_raise(failures, retry_after, f"{method} {url.split('?')[0]} -> {status}")
                continue
            if status == 401 and authenticate:
                response.close()
                if reauthenticated:
                    raise AuthenticationError(
                        f"RingCentral refused the credential for {method} {url.split('?')[0]} even after a new JWT login",
                        hint="check that the JWT is valid and not revoked, and that the app is authorised for it",
                    )
                reauthenticated = True
                assert token is not None
                self.tokens.recover(token)
                continue
            if status >= 400:
                body = response_body(response)
                response.close()
                raise ApiError(method, url, status, body)
            if 300 <= status < 400:
                # Never followed: a redirect could carry the bearer token (or a download) anywhere.
                location = response.headers.get("Location", "")
                response.close()
                target = urlsplit(location).hostname or "the same host"
                raise rcetl.PermanentError(
                    f"RingCentral answered {method} {urlsplit(url).path} with a redirect ({status}) to {target}; "
                    "redirects are not followed",
                    hint="if the server really moved, point the connection's server/media_server at the new host",
                )
            return response

    def _streamed(self, url: str, headers: Mapping[str, str] | None) -> requests.PreparedRequest:
        """A streamed GET (a binary's download), prepared for :meth:`_send_streamed`; the bearer
        token is added to its headers once the budget's slot is taken."""
        prepared = requests.PreparedRequest()
        prepared.method = "GET"
        prepared.prepare_url(url, None)
        merged = requests.structures.CaseInsensitiveDict(cast("Mapping[str, str]", self.session.headers))
        merged.update(headers or {})
        prepared.headers = merged
        return prepared

    def _send_streamed(self, prepared: requests.PreparedRequest) -> requests.Response:
        """A streamed GET (a binary's download) handed to the session's transport adapter directly.

        What ``Session.request`` adds on top of the adapter is nothing a download uses: redirects
        are never followed, the environment is read once (``_proxies``), and RingCentral's bearer
        API sets no cookies (none are kept or sent for downloads). Skipping it (request merging,
        cookie jars, hooks, settings resolution) halves requests' own CPU per download. The
        adapter still gives the same proxies, TLS verification, timeouts and exception types."""
        url = cast(str, prepared.url)
        verify = cast("bool | str", self.session.verify)  # set by __init__: a bundle's path, True or False
        return self.session.get_adapter(url).send(
            prepared, stream=True, timeout=self.timeout, verify=verify, cert=self.session.cert,
            proxies=self._proxies(url))

    # --- helpers ---------------------------------------------------------------------------------

    def _post_token(self, form: dict[str, str]) -> dict[str, Any]:
        url = self.token_url
        response = self.request("POST", url, data=form, authenticate=False)
        body = parse_json(response.content, f"POST {urlsplit(url).path}")
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
            raise rcetl.PermanentError(f"the token endpoint {urlsplit(url).path} answered without an access_token")
        return body

    token_url = ""  # set by the connection once the server is known

    def _rate_headers(self, response: requests.Response, group: str) -> tuple[int | None, int | None, float | None]:
        headers = response.headers
        reported = headers.get("X-Rate-Limit-Group")
        if reported and canonical_group(reported) != group:
            log.debug("%s counted in group %r, expected %r", urlsplit(response.url).path, reported, group)
        limit = _header_number(headers, "X-Rate-Limit-Limit")
        remaining = _header_number(headers, "X-Rate-Limit-Remaining")
        window = _header_number(headers, "X-Rate-Limit-Window")
        return (
            int(limit) if limit is not None else None,
            int(remaining) if remaining is not None else None,
            window / self.time_scale if window is not None else None,
        )

    def backoff_delay(self, failures: int) -> float:
        """2 s, 4 s, 8 s ... (API seconds, capped) in real seconds."""
        return min(2.0 ** failures, self.backoff_cap) / self.time_scale

    def _wait_too_long(self, group: str, asked: float, header: str | None, method: str, url: str,
                       status: int) -> rcetl.TransientError:
        """RingCentral (or a proxy in front of it) asked for a wait longer than ``backoff_cap``: the
        request fails now, with what was asked, instead of stalling the run for that long."""
        return rcetl.TransientError(
            f"RingCentral answered {method} {urlsplit(url).path} with {status} and Retry-After: {header} "
            f"({_seconds(asked)}) for the {group} group; that is longer than backoff_cap ({_seconds(self.backoff_cap)}), "
            "so rcetl does not wait: this fails now and is retried on the next run",
            hint="if RingCentral really asks for such waits, raise the connection's backoff_cap (API seconds)",
        )

    def _backoff_or_raise(self, failures: int, retry_after: float | None, what: str) -> None:
        if failures > self.max_retries:
            raise rcetl.TransientError(f"{what} (gave up after {failures} tries)")
        delay = self.backoff_delay(failures)
        if retry_after is not None:
            delay = max(delay, retry_after / self.time_scale)
        # One line progress displays can show ("waiting Ns: reason"), as budget waits are shown.
        log.info("waiting %.1fs: %s (try %d of %d after it)", delay, what, failures + 1, self.max_retries + 1)
        self._sleep(delay)

    def _proxies(self, url: str) -> dict[str, str]:
        """The proxies the environment gives ``url``'s scheme and host (none when NO_PROXY covers
        it), as requests would resolve them, read once per origin."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        found = self._proxies_by_origin.get(origin)
        if found is None:
            found = self._proxies_by_origin[origin] = requests.utils.get_environ_proxies(origin + "/")
        return found

    def _check_trusted(self, url: str) -> None:
        """The bearer token goes only to RingCentral hosts and the configured servers: a content URI
        from a payload must not be able to send it elsewhere."""
        host = (urlsplit(url).hostname or "").lower()
        if host in self.trusted_hosts or host.endswith((".ringcentral.com", ".ringcentral.biz")):
            return
        raise rcetl.PermanentError(
            f"refusing to send RingCentral credentials to {host!r}",
            hint="set the connection's media_server option if RingCentral really serves content from there",
        )

    def _count(self, key: str) -> None:
        with self._counts_lock:
            self.counts[key] = self.counts.get(key, 0) + 1
