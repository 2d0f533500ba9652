"""Rate limits as RingCentral enforces them, on a clock running 60x faster (60 s = 1 s)."""

from __future__ import annotations

import time

from rcetl.sandbox import Sandbox

from .conftest import login

SCALE = 60.0


def _heavy(s, sb):
    return s.get(f"{sb.server}/restapi/v1.0/account/~/call-log", params={"perPage": 1})


def test_eleventh_heavy_request_gets_429_and_penalty_restarts():
    with Sandbox(seed=3, size="tiny", time_scale=SCALE) as sb:
        s = login(sb)
        seen = [_heavy(s, sb) for _ in range(10)]
        assert [int(r.headers["X-Rate-Limit-Remaining"]) for r in seen] == list(range(9, -1, -1))
        assert all(r.status_code == 200 and r.headers["X-Rate-Limit-Group"] == "heavy" for r in seen)
        assert seen[0].headers["X-Rate-Limit-Limit"] == "10" and seen[0].headers["X-Rate-Limit-Window"] == "60"
        t0 = time.monotonic()
        over = _heavy(s, sb)
        assert over.status_code == 429 and over.headers["Retry-After"] == "60"
        assert over.json()["errors"][0]["errorCode"] == "CMN-301"
        # Light is a separate bucket and still open.
        assert s.get(f"{sb.server}/restapi/v1.0/account/~/extension/~/message-store").status_code == 200
        time.sleep(0.6)  # 36 API seconds into the 60 s penalty: polling now restarts it
        assert _heavy(s, sb).status_code == 429
        restarted = time.monotonic()
        time.sleep(0.75)  # past the first penalty's end, inside the restarted one
        assert time.monotonic() - t0 > 60 / SCALE
        assert _heavy(s, sb).status_code == 429
        time.sleep(max(0.0, restarted + 0.75 + 60 / SCALE + 0.1 - time.monotonic()))
        assert _heavy(s, sb).status_code == 200
        assert sb.counters()["throttled"] == 3


def test_sliding_window_and_no_limits():
    with Sandbox(seed=3, size="tiny", time_scale=SCALE) as sb:
        s = login(sb)
        for _ in range(5):
            _heavy(s, sb)
        time.sleep(0.5)
        for _ in range(5):
            _heavy(s, sb)
        time.sleep(0.55)  # the first five slid out of the window; the last five are still in it
        assert _heavy(s, sb).headers["X-Rate-Limit-Remaining"] == "4"
    with Sandbox(seed=3, size="tiny", limits=False) as sb:
        s = login(sb)
        assert all(_heavy(s, sb).status_code == 200 for _ in range(15))


def test_accounts_have_their_own_budget():
    with Sandbox(seed=3, size="tiny", time_scale=SCALE, accounts=2) as sb:
        a, b = login(sb, 0), login(sb, 1)
        for _ in range(10):
            _heavy(a, sb)
        assert _heavy(a, sb).status_code == 429
        assert _heavy(b, sb).status_code == 200
        ids = {a.get(f"{sb.server}/restapi/v1.0/account/~/extension").json()["records"][0]["uri"].split("/")[-3],
               b.get(f"{sb.server}/restapi/v1.0/account/~/extension").json()["records"][0]["uri"].split("/")[-3]}
        assert len(ids) == 2


def test_token_lifetime_on_the_scaled_clock():
    with Sandbox(seed=3, size="tiny", time_scale=3600 * 4) as sb:  # an hour passes in 0.25 s
        s = login(sb)
        time.sleep(0.3)
        r = s.get(f"{sb.server}/restapi/v1.0/account/~/extension")
        assert r.status_code == 401 and r.json()["errors"][0]["errorCode"] == "OAU-128"
