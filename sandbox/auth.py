"""OAuth: JWT credentials, access and refresh tokens with lifetimes on the sandbox clock.

Lifetimes follow RingCentral: access 1 h, refresh 7 days (or the ``*_ttl`` a client asks for,
within the documented bounds); a refresh rotates both tokens and ends the previous pair; a
revoke ends the whole session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass

from .clock import ScaledClock
from .errors import ApiError
from .ids import alnum_id

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ACCESS_TTL, ACCESS_TTL_MIN = 3600, 600
REFRESH_TTL, REFRESH_TTL_MAX = 604_800, 2_592_000
SCOPE = "CallControl ReadAccounts ReadCallLog ReadCallRecording ReadMessages EditMessages EditCallLog"
_PREFIX = b"SBX1|"  # every token the sandbox issues decodes to this prefix; anything else is malformed


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Session:
    session_id: str
    account: int
    owner_id: int
    access_token: str
    refresh_token: str
    access_expires: float
    refresh_expires: float
    revoked: bool = False


class Credentials:
    """The app's client id and secret and one JWT per account, all derived from the seed."""

    def __init__(self, seed: int, owners: list[tuple[str, int]]) -> None:
        self.client_id = alnum_id(22, seed, "client_id")
        self.client_secret = alnum_id(44, seed, "client_secret")
        self._key = hashlib.sha256(f"rcetl-sandbox-jwt:{seed}".encode()).digest()
        self.jwts = [self._jwt(account_id, owner, seed) for account_id, owner in owners]

    def _jwt(self, account_id: str, owner: int, seed: int) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "sandbox"}, separators=(",", ":")).encode())
        payload = _b64(json.dumps({
            "aud": "https://platform.ringcentral.com/restapi/oauth/token", "sub": str(owner), "iss": "https://platform.ringcentral.com",
            "account": account_id, "iat": 1_700_000_000, "jti": alnum_id(22, seed, "jti", account_id),
        }, separators=(",", ":")).encode())
        sig = hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(sig)}"

    def client_ok(self, client_id: str | None, secret: str | None) -> bool:
        return client_id == self.client_id and secret is not None and hmac.compare_digest(secret, self.client_secret)

    def account_of_jwt(self, assertion: str) -> int | None:
        for i, jwt in enumerate(self.jwts):
            if hmac.compare_digest(assertion, jwt):
                return i
        return None


class TokenStore:
    def __init__(self, clock: ScaledClock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._by_access: dict[str, Session] = {}
        self._by_refresh: dict[str, Session] = {}

    @staticmethod
    def _token(account: int) -> str:
        return _b64(_PREFIX + f"{account}|".encode() + secrets.token_bytes(24))

    def issue(self, account: int, owner_id: int, access_ttl: int = ACCESS_TTL, refresh_ttl: int = REFRESH_TTL,
              session_id: str | None = None) -> Session:
        now = self.clock.now()
        s = Session(session_id or alnum_id(16, secrets.token_hex(8)), account, owner_id, self._token(account),
                    self._token(account), now + access_ttl, now + refresh_ttl)
        with self._lock:
            self._by_access[s.access_token] = s
            self._by_refresh[s.refresh_token] = s
        return s

    def refresh(self, refresh_token: str, access_ttl: int, refresh_ttl: int) -> Session | None:
        """Rotate: the old pair stops working at once, the session goes on with a new pair."""
        with self._lock:
            old = self._by_refresh.get(refresh_token)
            if old is None or old.revoked or old.refresh_expires <= self.clock.now():
                return None
            old.revoked = True
        return self.issue(old.account, old.owner_id, access_ttl, refresh_ttl, session_id=old.session_id)

    def session_of(self, token: str) -> Session | None:
        return self._by_access.get(token) or self._by_refresh.get(token)

    def revoke(self, token: str) -> None:
        with self._lock:
            s = self._by_access.get(token) or self._by_refresh.get(token)
            if s is None:
                return
            for other in self._by_access.values():
                if other.session_id == s.session_id:
                    other.revoked = True

    def revoke_all(self) -> None:
        with self._lock:
            for s in self._by_access.values():
                s.revoked = True

    def authenticate(self, token: str) -> Session:
        """The session of a bearer token, or the 401 RingCentral answers for it."""
        try:
            well_formed = _unb64(token).startswith(_PREFIX)
        except (ValueError, TypeError):
            well_formed = False
        if not well_formed:
            raise ApiError(401, "OAU-149", "Invalid token", top_code="TokenInvalid")
        s = self._by_access.get(token)
        if s is None or s.revoked:
            raise ApiError(401, "OAU-129", "Access token corrupted", top_code="TokenInvalid")
        if s.access_expires <= self.clock.now():
            raise ApiError(401, "OAU-128", "Access token expired", top_code="TokenExpired")
        return s
