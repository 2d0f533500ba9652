"""Tokens: encrypted at rest, renewed before expiry, recovered after a 401, one refresher per credential."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

import rcetl
from rcetl.plugins.sources.ringcentral.api_errors import ApiError

from .conftest import call_log, drain, make_ctx, stream_of


def test_stored_token_is_encrypted(connected, tmp_path) -> None:
    sb, ctx, conn = connected()
    conn.account_id()
    token = conn.client.tokens._token
    assert token is not None
    blob = b"".join(p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file())
    assert blob, "the token was not stored"
    for secret in (sb.client_secret, sb.jwt, token.access_token, token.refresh_token):
        assert secret and secret.encode() not in blob


def test_run_longer_than_token_lifetime_never_fails(connected) -> None:
    sb, ctx, conn = connected(time_scale=1800.0)  # a 1 h access token lives 2 real seconds
    stream = stream_of(call_log, ctx, conn)
    deadline = time.monotonic() + 5.0
    runs = 0
    while time.monotonic() < deadline:
        records, _ = drain(stream)
        assert len(records) == len(sb.ground_truth()["accounts"][0]["call_log"])
        runs += 1
    tokens = conn.client.tokens
    assert tokens.refreshes >= 1 and tokens.logins == 1
    assert sb.counters()["by_status"].get("401", 0) == 0


def test_401_relogs_in_once_with_the_jwt(connected) -> None:
    sb, ctx, conn = connected()
    conn.account_id()
    sb.revoke_tokens()
    records, _ = drain(stream_of(call_log, ctx, conn))
    assert records and conn.client.tokens.logins == 2


def test_bad_jwt_is_a_clear_permanent_error(connected) -> None:
    sb, ctx, conn = connected(connection={"jwt": "not-a-valid-jwt-assertion"})
    with pytest.raises(rcetl.PermanentError) as info:
        conn.account_id()
    assert isinstance(info.value, ApiError) and info.value.status in (400, 401)
    assert "not-a-valid-jwt-assertion" not in str(info.value)


def _worker(options: dict, state: str, seconds: float, results) -> None:
    from rcetl.plugins.sources.ringcentral import plugin

    ctx = make_ctx(Path(state).parent / f"w{multiprocessing.current_process().pid}", state=Path(state))
    (spec,) = plugin.rcetl_connections()
    conn = spec.factory("rc", spec.config(**options), ctx)
    failures = 0
    requests = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            try:
                conn.get_json("/restapi/v1.0/account/~/extension", {"perPage": 1})
                requests += 1
            except Exception:  # noqa: BLE001 - any failure counts
                failures += 1
        tokens = conn.client.tokens
        results.put({"failures": failures, "requests": requests, "logins": tokens.logins, "refreshes": tokens.refreshes})
    finally:
        conn.close()


def test_two_processes_share_one_token(sandbox_factory, tmp_path) -> None:
    sb = sandbox_factory(time_scale=1800.0, limits=False)
    options = {
        "server": sb.server, "media_server": sb.media_server, "client_id": sb.client_id,
        "client_secret": sb.client_secret, "jwt": sb.jwt, "time_scale": sb.time_scale,
    }
    mp = multiprocessing.get_context("spawn")
    results = mp.Queue()
    state = str(tmp_path / "state")
    procs = [mp.Process(target=_worker, args=(options, state, 6.0, results)) for _ in range(2)]
    for p in procs:
        p.start()
    out = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert all(r["failures"] == 0 and r["requests"] > 0 for r in out), out
    # One JWT login between them; every later renewal is a refresh by whichever process got there first.
    assert sum(r["logins"] for r in out) == 1, out
    assert sum(r["refreshes"] for r in out) >= 2, out
