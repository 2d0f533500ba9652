"""The ``ringcentral`` connection: one per pipeline connection, shared by its sources and threads.

Opening is lazy and makes no request (a dry run never opens it): the first request starts the
embedded sandbox if asked, builds the pooled session and the budget, and logs in.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import rcetl

from .api_errors import ApiError
from .config import EMBEDDED_SANDBOX, RingCentralConfig, credential_id
from .http import PRIORITY_LIST, ApiClient
from .throttling import canonical_group, configured_limits, default_limits, group_for
from .token_vault import TokenVault
from .tokens import TokenManager

log = logging.getLogger(__name__)

_ACCOUNT_IN_URI = re.compile(r"/restapi/v1\.0/account/([^/~?]+)")


class RingCentralConnection:
    def __init__(self, name: str, config: RingCentralConfig, ctx: rcetl.RunContext) -> None:
        self.name = name
        self.config = config
        self.ctx = ctx
        self._lock = threading.RLock()
        self._account_lock = threading.Lock()  # not _lock: a request must not block open() elsewhere
        self._client: ApiClient | None = None
        self._embedded: contextlib.AbstractContextManager[Mapping[str, Any]] | None = None
        self._account_id: str | None = None
        self.server = config.server.rstrip("/")
        self.time_scale = config.time_scale
        self.credential: str | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._client is not None

    def open(self) -> ApiClient:
        """Idempotent; returns the shared client."""
        with self._lock:
            if self._client is not None:
                return self._client
            cfg = self.config
            media = cfg.media_server
            client_id = cfg.client_id or ""
            secret = cfg.client_secret.get_secret_value() if cfg.client_secret else ""
            jwt = cfg.jwt.get_secret_value() if cfg.jwt else ""
            if cfg.server == EMBEDDED_SANDBOX:
                info = self._start_sandbox()
                self.server = str(info["server"]).rstrip("/")
                media = str(info.get("media_server") or media or "")
                client_id, secret, jwt = str(info["client_id"]), str(info["client_secret"]), str(info["jwt"])
                rcetl.register_secret(secret)
                rcetl.register_secret(jwt)
                self.time_scale = float(info.get("time_scale") or cfg.time_scale)
            if not cfg.verify_tls:
                log.warning(
                    "TLS VERIFICATION IS OFF for RingCentral connection %r: anyone on the network path can "
                    "read the token and the archive's contents. Use verify_tls: false only against a test server.",
                    self.name,
                )
            self.credential = credential_id(self.server, client_id, jwt)
            budget = self.ctx.budgets.budget(self.credential, default_limits(self.time_scale, cfg.limits))
            if cfg.limits:
                # Only the groups the user named: a set limit is a ceiling, and the others must stay
                # free to learn a bigger plan from the X-Rate-Limit headers.
                named = {canonical_group(g) for g in cfg.limits}
                for group, limit in default_limits(self.time_scale, cfg.limits).items():
                    if group in named:
                        with contextlib.suppress(NotImplementedError):
                            budget.set_limit(group, limit)
            vault = TokenVault(self.ctx.coordinator, self.credential, secret, jwt)
            trusted = {urlsplit(self.server).hostname or ""}
            if media:
                trusted.add(urlsplit(media).hostname or "")
            time_scale = self.time_scale
            client = ApiClient(
                budget=budget,
                tokens_factory=lambda post: TokenManager(vault, post, jwt, time_scale),
                basic_auth=(client_id, secret),
                time_scale=time_scale,
                timeout=cfg.timeout,
                verify_tls=cfg.verify_tls,
                pool_size=cfg.pool_size,
                max_retries=cfg.max_retries,
                backoff_cap=cfg.backoff_cap,
                trusted_hosts=frozenset(h.lower() for h in trusted if h),
                max_download_bytes=cfg.max_download_bytes,
                stop=rcetl.stop_signal(self.ctx),
            )
            client.token_url = f"{self.server}/restapi/oauth/token"
            self._client = client
            return client

    def _start_sandbox(self) -> Mapping[str, Any]:
        spec = self.ctx.embedded_servers.get(EMBEDDED_SANDBOX)
        if spec is None:
            raise rcetl.ConfigError(
                f"connection {self.name!r} uses server: sandbox but the sandbox plugin is not installed",
                hint="install rcetl with its sandbox, or set server to a URL",
            )
        self._embedded = spec.start(dict(self.config.sandbox))
        return self._embedded.__enter__()

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._embedded is not None:
                embedded, self._embedded = self._embedded, None
                embedded.__exit__(None, None, None)

    # --- what sources use ------------------------------------------------------------------------

    @property
    def client(self) -> ApiClient:
        return self._client or self.open()

    def url(self, path: str) -> str:
        """An absolute URL for an API path (``/restapi/v1.0/...``); absolute URLs pass through."""
        if path.startswith(("https://", "http://")):
            return path
        self.open()
        return f"{self.server}{path}"

    def planned_limits(self) -> dict[str, tuple[int, float]]:
        """Requests per window (in API seconds) per group, as configured: what a dry run plans with
        before any header has told the real plan."""
        return {group: (limit, 60.0) for group, limit in configured_limits(self.config.limits).items()}

    def describe(self) -> str:
        """The account this connection reads, for `rcetl workers status` (never a secret)."""
        return f"account {self._account_id or self.config.account}"

    def planned_group(self, method: str, url: str) -> str:
        """The API group a request is counted in: a dry run counts downloads per group with it."""
        return group_for(method, url)

    def account_path(self, suffix: str = "") -> str:
        return self.url(f"/restapi/v1.0/account/{self.config.account}{suffix}")

    def get_json(self, path: str, params: Mapping[str, Any] | None = None, *, priority: int = PRIORITY_LIST) -> Any:
        return self.client.get_json(self.url(path), params, priority=priority)

    def account_id(self) -> str:
        """The real account id (``~`` resolved once, by one Light request)."""
        with self._account_lock:
            if self._account_id is None:
                self._account_id = self._resolve_account()
            return self._account_id

    def _resolve_account(self) -> str:
        account = self.config.account
        if account != "~":
            return account
        try:
            return str(self.get_json(f"/restapi/v1.0/account/{account}")["id"])
        except ApiError as exc:
            if exc.status != 404:
                raise
        # A server without the account-info endpoint (some simulators): every extension's uri
        # names the real account (one Medium request, same answer as the real API would give).
        log.warning("GET /account/~ is not served by %s; reading the account id from the extension list", self.server)
        page = self.get_json(f"/restapi/v1.0/account/{account}/extension", {"perPage": 1})
        for rec in page.get("records") or []:
            match = _ACCOUNT_IN_URI.search(str(rec.get("uri", "")))
            if match:
                return match.group(1)
        raise rcetl.PermanentError(f"cannot resolve account '~' on {self.server}", hint="set the connection's account option")
