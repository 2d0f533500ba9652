"""``Sandbox``: the simulator as a context manager, on two free ports (platform and media)."""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any

from werkzeug.serving import make_server

from .app import SandboxApp
from .auth import Credentials
from .clock import ScaledClock
from .faults import FaultPlan
from .generator import AccountGenerator
from .keepalive import KeepAliveHandler
from .model import AccountData
from .options import SandboxOptions
from .ratelimit import RateLimiter
from .render import Urls, call_record, message_json


class Sandbox:
    """A local RingCentral. ``with Sandbox(seed=1, size="tiny") as sb:`` then point any client at
    ``sb.server`` with ``sb.client_id``/``sb.client_secret`` and ``sb.jwt``."""

    def __init__(self, seed: int = 1, size: str = "tiny", time_scale: float = 1.0, faults: str | None = None,
                 data: Any = None, accounts: int = 1, limits: bool = True, *, host: str = "127.0.0.1",
                 port: int = 0, media_port: int = 0, **more: Any) -> None:
        self.options = SandboxOptions.from_mapping(dict(seed=seed, size=size, time_scale=time_scale, faults=faults,
                                                        data=data, accounts=accounts, limits=limits, **more))
        self.host, self._ports = host, (port, media_port)
        self.time_scale = self.options.time_scale
        self._generators, self.data = build_accounts(self.options)
        self.credentials = Credentials(self.options.seed, [(d.account_id, d.owner_extension_id) for d in self.data])
        self.clock = ScaledClock(self.options.time_scale)
        self.urls = Urls(f"http://{host}:{port or 0}", f"http://{host}:{media_port or 0}")
        self.app = SandboxApp(self, self.data, self.credentials, self.clock,
                              RateLimiter(self.clock, self.options.effective_plan(), enabled=self.options.limits,
                                          headers=self.options.rate_headers),
                              FaultPlan.parse(self.options.faults, self.options.seed), self.urls)
        self._servers: list = []
        self._threads: list[threading.Thread] = []

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Sandbox:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        platform = make_server(self.host, self._ports[0], self.app.platform, threaded=True, request_handler=KeepAliveHandler)
        media = make_server(self.host, self._ports[1], self.app.media, threaded=True, request_handler=KeepAliveHandler)
        self._servers = [platform, media]
        self.urls = Urls(f"http://{self.host}:{platform.port}", f"http://{self.host}:{media.port}")
        self.app.urls = self.urls
        for srv in self._servers:
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        self._servers, self._threads = [], []

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what a client needs ------------------------------------------------------------------

    @property
    def server(self) -> str:
        return self.urls.server

    @property
    def media_server(self) -> str:
        return self.urls.media

    @property
    def admin(self) -> str:
        return f"{self.urls.server}/sandbox"

    @property
    def client_id(self) -> str:
        return self.credentials.client_id

    @property
    def client_secret(self) -> str:
        return self.credentials.client_secret

    @property
    def jwt(self) -> str:
        return self.credentials.jwts[0]

    @property
    def accounts(self) -> list[dict[str, Any]]:
        return [{"index": i, "account_id": d.account_id, "owner_extension_id": d.owner_extension_id,
                 "client_id": self.client_id, "client_secret": self.client_secret, "jwt": self.credentials.jwts[i]}
                for i, d in enumerate(self.data)]

    def info(self) -> dict[str, Any]:
        return {"server": self.server, "media_server": self.media_server, "client_id": self.client_id,
                "client_secret": self.client_secret, "jwt": self.jwt, "accounts": self.accounts,
                "time_scale": self.time_scale, "admin": self.admin, "seed": self.options.seed,
                "anchor": self.options.anchor.isoformat().replace("+00:00", "Z"), "limits": self.options.limits,
                "plan": self.options.effective_plan(), "rate_headers": self.options.rate_headers}

    # --- control ------------------------------------------------------------------------------

    def counters(self) -> dict[str, Any]:
        return self.app.counters.snapshot()

    def request_log(self) -> list[tuple[float, str | None, int]]:
        """(arrival on the sandbox clock in API seconds, group, status) of recent API requests,
        oldest first: what a test measures pacing and window use from."""
        return self.app.counters.log()

    def revoke_tokens(self) -> None:
        self.app.tokens.revoke_all()

    def add_calls(self, n: int, account: int = 0, recordings: int | None = None) -> list[dict[str, Any]]:
        """Add ``n`` calls that happened in the last few minutes (half of them recorded unless
        ``recordings`` says how many); returns them as served (Detailed view)."""
        gen, data = self._generators[account], self.data[account]
        now = _now_ms()
        with data.lock:
            calls = gen.calls(n, n // 2 if recordings is None else recordings, window=(now - 300_000, now - 1_000))
            for c in calls:
                c.last_modified_ms = max(c.last_modified_ms, now)
                data.add_call(c)
        return [call_record(c, self.urls, data.account_id, detailed=True) for c in calls]

    def add_messages(self, n: int, account: int = 0) -> list[dict[str, Any]]:
        gen, data = self._generators[account], self.data[account]
        now = _now_ms()
        with data.lock:
            msgs = gen.messages(n, window=(now - 300_000, now - 1_000))
            for m in msgs:
                m.availability = "Alive"
                data.add_message(m)
        return [message_json(m, self.urls, data.account_id) for m in msgs]

    def ground_truth(self) -> dict[str, Any]:
        from .groundtruth import ground_truth

        return ground_truth(self.options, self.data, self.urls)


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def build_accounts(options: SandboxOptions) -> tuple[list[AccountGenerator], list[AccountData]]:
    """Generate (or load) every account. The cyclic GC is paused while millions of long-lived
    objects are made (it would rescan them over and over), and what was built is then frozen out
    of later collections, so serving never pays a full-heap GC pass for the data set. Garbage
    cycles already waiting (an earlier sandbox) are collected first: frozen, they would never be."""
    from .datafile import load_data

    profile = options.profile()
    gens = [AccountGenerator(options.seed, i, options.anchor, profile, options.recording_bytes) for i in range(options.accounts)]
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        data = load_data(options.data, gens) if options.data is not None else [g.build() for g in gens]
    finally:
        if was_enabled:
            gc.enable()
    gc.freeze()
    return gens, data
