"""A small CouchDB HTTP client on ``requests``.

Why not a CouchDB library: ``ibmcloudant`` is IBM Cloud's SDK (IAM auth, generated models, a large
dependency tree) and ``couchdb3`` is a thin wrapper that hides the per-document ``_bulk_docs``
results and cannot stream an attachment from a file. The sink needs exactly five endpoints
(``_all_docs``, ``_bulk_docs``, document and attachment GET/PUT, ``_index``), the per-document
conflict results, streamed uploads, and JSON with exact 64-bit integers (``rcetl.json_dumps``), all
of which plain ``requests`` (already a core dependency) gives directly.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests

import rcetl


class NotFound(Exception):
    """The document or database does not exist (404)."""


class Conflict(Exception):
    """The document changed since the revision we sent (409): re-read and try again."""


def path_of(doc_id: str, attachment: str | None = None) -> str:
    path = quote(doc_id, safe=":")
    return f"{path}/{quote(attachment, safe='')}" if attachment is not None else path


class CouchClient:
    """One server and database; thread-safe (a ``requests.Session`` per client, used read-mostly)."""

    def __init__(self, url: str, database: str, *, username: str | None, password: str | None,
                 ca_certs: str | None, verify_tls: bool, timeout: float) -> None:
        parts = urlsplit(url)
        user = username if username is not None else (unquote(parts.username) if parts.username else None)
        secret = password if password is not None else (unquote(parts.password) if parts.password else None)
        if not parts.hostname:  # CouchSinkConfig refuses such a URL already; this is for direct callers
            raise ValueError("CouchDB url has no host name: write it as http(s)://host[:port]")
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        #: The server's URL without credentials: safe in messages and in archive locations.
        self.server = urlunsplit((parts.scheme, host, "", "", ""))
        self.database = database
        self.base = f"{self.server}/{quote(database, safe='')}"
        self.timeout = timeout
        self.session = requests.Session()
        if user is not None:
            self.session.auth = (user, secret or "")
        # Passed with every request: a Session-level ``verify`` loses to REQUESTS_CA_BUNDLE /
        # CURL_CA_BUNDLE from the environment (requests merges those over it), so ca_certs would be ignored.
        self.verify: str | bool = ca_certs if ca_certs else verify_tls
        self.session.headers["Accept"] = "application/json"

    def close(self) -> None:
        self.session.close()

    # --- requests ----------------------------------------------------------------------------

    def request(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None,
                data: Any = None, headers: dict[str, str] | None = None, stream: bool = False,
                server: bool = False) -> requests.Response:
        url = f"{self.server}/{path}" if server else (f"{self.base}/{path}" if path else self.base)
        hdrs = dict(headers or {})
        if body is not None:
            # rcetl.json_dumps: fast (orjson), ints of any size exact (requests may pick simplejson).
            data = rcetl.json_dumps(body).encode("utf-8", "surrogatepass")
            hdrs["Content-Type"] = "application/json"
        try:
            resp = self.session.request(method, url, params=params, data=data, headers=hdrs,
                                        timeout=self.timeout, stream=stream, verify=self.verify)
        except requests.exceptions.SSLError as exc:
            raise rcetl.ConfigError(f"TLS to CouchDB at {self.server} failed: {rcetl.redact(str(exc))[:300]}",
                                    hint="set ca_certs to the server's CA bundle (PEM)") from None
        except requests.RequestException as exc:
            raise rcetl.TransientError(f"CouchDB at {self.server} did not answer {method} {self.database}/"
                                       f"{path[:80]}: {rcetl.redact(str(exc))[:300]}",
                                       hint="is the server running and reachable? the work is retried") from None
        if resp.status_code < 300:
            return resp
        reason = _reason(resp)
        if resp.status_code == 404:
            raise NotFound(reason)
        if resp.status_code == 409:
            raise Conflict(reason)
        if resp.status_code in (401, 403):
            raise rcetl.ConfigError(f"CouchDB at {self.server} refused {method} on {self.database}: {reason}",
                                    hint="check the user and password (URL credentials, or username/password "
                                         "with ${ENV_VAR}) and the user's rights on the database")
        if resp.status_code in (408, 429) or resp.status_code >= 500:
            raise rcetl.TransientError(f"CouchDB at {self.server} answered {resp.status_code} to {method} "
                                       f"{self.database}/{path[:80]}: {reason}", hint="the work is retried")
        raise rcetl.PermanentError(f"CouchDB at {self.server} rejected {method} {self.database}/{path[:80]}: "
                                   f"{resp.status_code} {reason}")

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return rcetl.json_loads(self.request(method, path, **kwargs).content)

    def get_doc(self, doc_id: str) -> dict[str, Any] | None:
        try:
            return self.json("GET", path_of(doc_id))
        except NotFound:
            return None

    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The current documents among ``ids`` (attachments as stubs), by id; missing ones absent."""
        rows = self.json("POST", "_all_docs", params={"include_docs": "true"}, body={"keys": ids})["rows"]
        return {row["id"]: row["doc"] for row in rows if row.get("doc")}

    def bulk_docs(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.json("POST", "_bulk_docs", body={"docs": docs})

    def all_docs(self, prefix: str, *, include_docs: bool, page: int = 1000):
        """Every row whose id starts with ``prefix``, paged by id (``_all_docs`` sorts ids raw)."""
        # Ids of the prefix sort before the prefix with its last character (':') incremented.
        params: dict[str, Any] = {"startkey": json.dumps(prefix), "endkey": json.dumps(prefix[:-1] + ";"),
                                  "inclusive_end": "false", "limit": page, "include_docs": str(include_docs).lower()}
        while True:
            rows = self.json("GET", "_all_docs", params=params)["rows"]
            for row in rows:
                if row["id"].startswith(prefix):
                    yield row
            if len(rows) < page:
                return
            params = {**params, "startkey": json.dumps(rows[-1]["id"]), "skip": 1}


def _reason(resp: requests.Response) -> str:
    try:
        body = resp.json()
        text = f"{body.get('error', '')}: {body.get('reason', '')}".strip(": ")
    except ValueError:
        text = resp.text[:200]
    return rcetl.redact(text)[:300]
