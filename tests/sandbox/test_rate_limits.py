"""Rate limits as RingCentral enforces them, on a clock running 60x faster (60 s = 1 s)."""

from __future__ import annotations

import time

import pytest

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


def test_plan_limits_per_group_and_headers_left_out():
    with Sandbox(seed=3, size="tiny", time_scale=SCALE, plan="heavy=5,Medium=40") as sb:
        s = login(sb)
        seen = [_heavy(s, sb) for _ in range(6)]
        assert [r.status_code for r in seen] == [200] * 5 + [429]
        assert seen[0].headers["X-Rate-Limit-Limit"] == "5" and seen[4].headers["X-Rate-Limit-Remaining"] == "0"
        ext = s.get(f"{sb.server}/restapi/v1.0/account/~/extension")
        assert ext.headers["X-Rate-Limit-Limit"] == "40" and ext.headers["X-Rate-Limit-Group"] == "medium"
        assert [(g, st) for _, g, st in sb.request_log() if g == "Heavy"] == [("Heavy", 200)] * 5 + [("Heavy", 429)]
    with Sandbox(seed=3, size="tiny", time_scale=SCALE, plan={"Heavy": 3}, rate_headers=False) as sb:
        s = login(sb)
        seen = [_heavy(s, sb) for _ in range(4)]
        assert [r.status_code for r in seen] == [200, 200, 200, 429]  # still enforced
        assert not any(k.lower().startswith("x-rate-limit") for r in seen for k in r.headers)
        assert seen[-1].headers["Retry-After"] == "60"
    with Sandbox(seed=3, size="tiny", limits=False) as sb:  # --no-limits: unlimited, and the headers say so
        s = login(sb)
        seen = [_heavy(s, sb) for _ in range(12)]
        assert {r.status_code for r in seen} == {200}
        assert {(r.headers["X-Rate-Limit-Limit"], r.headers["X-Rate-Limit-Remaining"]) for r in seen} == {("1000000000",) * 2}


@pytest.mark.parametrize(("plan", "why"), [("heavy=0", "at least 1"), ("huge=5", "unknown rate-limit group"),
                                           ("heavy", "expected GROUP=N"), ("heavy=x", "not a whole number")])
def test_bad_plans_are_refused(plan, why):
    with pytest.raises(ValueError, match=why):
        Sandbox(seed=3, size="tiny", plan=plan)
