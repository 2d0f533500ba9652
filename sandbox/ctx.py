"""What a handler gets: the request, the caller's session and account, and the sandbox state."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from werkzeug.wrappers import Request

from .auth import Session
from .errors import ApiError, invalid_parameter, not_found, rate_exceeded
from .model import AccountData
from .ratelimit import Verdict
from .render import Urls, parse_iso
from .services import Services


@dataclass
class Ctx:
    services: Services
    request: Request
    group: str | None
    media: bool
    session: Session | None = None
    data: AccountData | None = None
    verdict: Verdict | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def args(self):
        return self.request.args

    @property
    def urls(self) -> Urls:
        return self.services.urls

    @property
    def account(self) -> AccountData:
        """The caller's account data; every API route's handler runs after ``_authorize`` set it."""
        assert self.data is not None, "account data read before the request was authorised"
        return self.data

    @property
    def account_id(self) -> str:
        return self.account.account_id

    def meter(self, account: int, owner_id: int) -> None:
        """Count this request against the caller's budget for its group; 429 when spent."""
        if self.group is None:
            return
        self.verdict = self.services.limiter.hit((account, owner_id, self.services.credentials.client_id), self.group)
        if not self.verdict.allowed:
            raise rate_exceeded(self.verdict.headers())

    def extension_id(self, value: str) -> int:
        """Resolve an ``{extensionId}`` path value (``~`` is the token's own extension)."""
        assert self.data is not None and self.session is not None
        if value == "~":
            return self.session.owner_id
        try:
            ext = int(value)
        except ValueError:
            raise not_found("extensionId", value) from None
        if self.data.extension(ext) is None:
            raise not_found("extensionId", value)
        return ext

    def date(self, name: str, default_ms: int) -> int:
        raw = self.args.get(name)
        if not raw:
            return default_ms
        try:
            return parse_iso(raw.replace(" ", "+"))  # an unencoded "+00:00" arrives as a space
        except ValueError:
            raise invalid_parameter(name, raw) from None

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)

    def base(self) -> str:
        """This request's URL without query, on the entry point it arrived at."""
        root = self.services.urls.media if self.media else self.services.urls.server
        return root + self.request.path

    def full_url(self) -> str:
        query = self.request.query_string.decode()
        return self.base() + (f"?{query}" if query else "")

    def params(self) -> list[tuple[str, str]]:
        return list(self.args.items(multi=True))


def check_batch(ids: list[str], limit: int) -> None:
    if len(ids) > limit:
        raise ApiError(400, "CMN-106", f"Batch request is limited to {limit} entries")
