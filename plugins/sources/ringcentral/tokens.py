"""One token per credential, renewed by one refresher at a time across threads and processes.

A RingCentral refresh rotates the refresh token and kills the previous access token, so two
processes refreshing the same session would invalidate each other. Every renewal therefore happens
under the coordinator lock and starts by re-reading the stored token: if another process renewed it
meanwhile, that token is adopted instead of refreshing again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .api_errors import ApiError
from .token_vault import Token, TokenVault

log = logging.getLogger(__name__)

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

# Renew this many API seconds before expiry (the JS SDK's default handicap), so no request ever
# leaves with a token about to die in flight.
REFRESH_MARGIN = 60.0
#: Real seconds of validity kept in hand whatever the clock scale (see _margin_for).
REAL_MARGIN_FLOOR = 2.0

TokenRequest = Callable[[dict[str, str]], dict[str, Any]]


class TokenManager:
    def __init__(self, vault: TokenVault, request_token: TokenRequest, jwt: str, time_scale: float) -> None:
        self._vault = vault
        self._request_token = request_token  # POSTs /restapi/oauth/token with client authentication
        self._jwt = jwt
        self._time_scale = time_scale
        self._token: Token | None = None
        self._lock = threading.Lock()
        self.logins = 0
        self.refreshes = 0

    @property
    def margin(self) -> float:
        """Real seconds before expiry at which to renew (at most a tenth of a short token's life)."""
        return REFRESH_MARGIN / self._time_scale

    @property
    def owner_id(self) -> str | None:
        return self._token.owner_id if self._token else None

    def access_token(self) -> str:
        """A token valid for at least ``margin`` seconds: the cached one, the one another process
        stored meanwhile, or a freshly renewed one."""
        token = self._token
        if token is not None and token.valid_for(self._margin_for(token)):
            if self._vault.stored_fingerprint() in (None, token.fingerprint):
                return token.access_token
        with self._lock:
            return self._renew(rejected=None).access_token

    def recover(self, rejected: str) -> str:
        """After a 401 with ``rejected``: adopt a newer stored token, else log in again with the JWT
        (not a refresh: the session itself may be gone)."""
        with self._lock:
            return self._renew(rejected=rejected).access_token

    def _margin_for(self, token: Token) -> float:
        life = max(token.expires_at - token.issued_at, 0.0)
        if not life:
            return self.margin
        # At a scaled clock 60 API seconds may be milliseconds, less than one slow request takes
        # on a loaded machine: keep at least a quarter of the life (up to 2 real seconds) in hand.
        return max(min(self.margin, life / 10), min(REAL_MARGIN_FLOOR, life / 4))

    def _renew(self, rejected: str | None) -> Token:
        with self._vault.lock():
            stored = self._vault.load()
            if (
                stored is not None
                and stored.access_token != rejected
                and stored.valid_for(self._margin_for(stored))
            ):
                self._token = stored  # someone (this process earlier, or another) already renewed it
                return stored
            token: Token | None = None
            if rejected is None and stored is not None and stored.can_refresh():
                token = self._refresh(stored)
            if token is None:
                token = self._login()
            self._vault.save(token)
            self._token = token
            return token

    def _refresh(self, stored: Token) -> Token | None:
        try:
            body = self._request_token({"grant_type": "refresh_token", "refresh_token": stored.refresh_token or ""})
        except ApiError as exc:  # refresh token expired or revoked: the JWT still works
            log.info("token refresh refused (%s); logging in again with the JWT", exc.code)
            return None
        self.refreshes += 1
        return self._token_from(body, previous=stored)

    def _login(self) -> Token:
        body = self._request_token({"grant_type": JWT_GRANT, "assertion": self._jwt})
        self.logins += 1
        return self._token_from(body, previous=None)

    def _token_from(self, body: dict[str, Any], previous: Token | None) -> Token:
        now = time.time()
        expires_in = float(body.get("expires_in") or 3600) / self._time_scale
        refresh_in = body.get("refresh_token_expires_in")
        owner = body.get("owner_id") or (previous.owner_id if previous else None)
        return Token(
            access_token=str(body["access_token"]),
            expires_at=now + expires_in,
            refresh_token=body.get("refresh_token"),
            refresh_expires_at=(now + float(refresh_in) / self._time_scale) if refresh_in is not None else None,
            owner_id=str(owner) if owner is not None else None,
            issued_at=now,
        )
