"""Options of the ``ringcentral`` connection (one credential, one token, one rate budget)."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import Field, SecretStr, model_validator

import rcetl

PRODUCTION = "https://platform.ringcentral.com"
EMBEDDED_SANDBOX = "sandbox"


class RingCentralConfig(rcetl.PluginConfig):
    """How to reach RingCentral and as whom.

    ``server`` is the platform URL (production, a ``.biz`` partner environment, any simulator URL),
    or ``sandbox`` to start rcetl's embedded simulator, which then supplies the credentials.
    """

    server: str = PRODUCTION
    # Only needed when content URIs point at a media host that is neither the platform's host nor a
    # ringcentral.com/.biz host (a simulator on another host); the bearer token goes nowhere else.
    media_server: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    jwt: SecretStr | None = None
    # The sandbox runs a scaled clock: every duration the server reports (X-Rate-Limit-Window,
    # Retry-After, expires_in) is divided by this to get real seconds.
    time_scale: float = Field(1.0, gt=0)
    # Requests per 60 s window per API group, overriding the defaults (names case-insensitive).
    limits: dict[str, int] | None = None
    timeout: float = Field(60.0, gt=0, description="seconds to connect and between bytes of a response")
    verify_tls: bool = True
    # At least as many as the engine's download threads for one credential (sized from the budget,
    # up to 64): with fewer, every window's burst of downloads closed the connections beyond the
    # pool ("Connection pool is full, discarding connection") and opened them again a window later.
    pool_size: int = Field(64, ge=1, le=256, description="kept-alive connections per host")
    max_retries: int = Field(6, ge=0, le=20, description="tries after a 5xx or a connection error")
    backoff_cap: float = Field(120.0, gt=0, description="longest pause between tries, in API seconds")
    max_download_bytes: int = Field(
        8 << 30, ge=1, description="largest binary accepted (bytes); a longer or endless body is cut and the item fails"
    )
    sandbox: dict[str, Any] = Field(default_factory=dict, description="options of the embedded sandbox")
    account: str = "~"

    @model_validator(mode="after")
    def _credentials_present(self) -> RingCentralConfig:
        if self.server != EMBEDDED_SANDBOX:
            missing = [n for n in ("client_id", "client_secret", "jwt") if not getattr(self, n)]
            if missing:
                raise ValueError(
                    f"{', '.join(missing)} required for server {self.server!r} "
                    "(set them from the environment, e.g. jwt: ${RC_JWT}; or use server: sandbox)"
                )
            if not self.server.startswith(("https://", "http://")):
                raise ValueError(f"server must be an http(s) URL or 'sandbox', not {self.server!r}")
        if self.client_secret:
            rcetl.register_secret(self.client_secret.get_secret_value())
        if self.jwt:
            rcetl.register_secret(self.jwt.get_secret_value())
        return self


def credential_id(server: str, client_id: str, jwt: str) -> str:
    """A stable, non-secret name for one (server, app, user) credential: budgets and tokens are keyed
    by it. A one-way hash, so the JWT cannot be recovered from state files or Redis keys."""
    digest = hashlib.sha256("\x1f".join((server.rstrip("/"), client_id, jwt)).encode()).hexdigest()
    return f"rc-{digest[:24]}"
