"""Where the connection's OAuth token lives between threads, processes and runs: encrypted.

The token is stored through the run's :class:`rcetl.Coordinator` (a 0600 file locally, Redis for
workers) so every process of a credential uses one token. It is encrypted with Fernet under a key
derived (HKDF-SHA256) from the client secret and the JWT, which only holders of the credential have:
a state folder or a Redis dump gives away nothing usable.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import rcetl

_FORMAT = 1


@dataclass(frozen=True)
class Token:
    """An access token and what is needed to renew it. Times are epoch seconds of the real clock."""

    access_token: str
    expires_at: float
    refresh_token: str | None = None
    refresh_expires_at: float | None = None
    owner_id: str | None = None
    issued_at: float = 0.0

    def valid_for(self, seconds: float, now: float | None = None) -> bool:
        return self.expires_at - (time.time() if now is None else now) > seconds

    def can_refresh(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return bool(self.refresh_token) and (self.refresh_expires_at is None or self.refresh_expires_at - now > 1)

    @property
    def fingerprint(self) -> str:
        """Tells tokens apart without revealing them (safe to store in clear beside the ciphertext)."""
        return hashlib.sha256(self.access_token.encode()).hexdigest()[:16]


def _fernet(client_secret: str, jwt: str, credential: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"rcetl.ringcentral.token-vault", info=credential.encode()
    ).derive(f"{client_secret}\x1f{jwt}".encode())
    return Fernet(base64.urlsafe_b64encode(key))


class TokenVault:
    """Load and save one credential's token through the coordinator, encrypted at rest."""

    def __init__(self, coordinator: rcetl.Coordinator, credential: str, client_secret: str, jwt: str) -> None:
        self._coordinator = coordinator
        self.name = f"ringcentral-token-{credential}"
        self._fernet = _fernet(client_secret, jwt, credential)

    def lock(self, timeout: float = 900.0):
        """The refresher's lock: whoever holds it is the only one allowed to log in or refresh."""
        return self._coordinator.lock(self.name, timeout=timeout)

    def stored_fingerprint(self) -> str | None:
        entry = self._coordinator.get(self.name)
        return entry.get("fingerprint") if entry else None

    def load(self) -> Token | None:
        entry = self._coordinator.get(self.name)
        if not entry or entry.get("format") != _FORMAT:
            return None
        try:
            plain = self._fernet.decrypt(entry["ciphertext"].encode())
        except (InvalidToken, KeyError, TypeError):
            # Written under another secret (rotated credentials): as good as absent.
            return None
        data: dict[str, Any] = json.loads(plain)
        return Token(**data)

    def save(self, token: Token) -> None:
        ciphertext = self._fernet.encrypt(json.dumps(asdict(token)).encode()).decode()
        self._coordinator.put(
            self.name, {"format": _FORMAT, "fingerprint": token.fingerprint, "ciphertext": ciphertext}
        )
