"""Fault injection: reproducible by seed, each kind visible to a client."""

from __future__ import annotations

import pytest
import requests
from rcetl.sandbox import Sandbox
from rcetl.sandbox.faults import FaultPlan

from .conftest import login


def test_spec_parsing_and_reproducibility():
    plan = FaultPlan.parse("5xx=0.05,drop=0.05,429=0.02,slow=0.01:2,revoke=@50", seed=1)
    assert plan.rates == {"5xx": 0.05, "drop": 0.05, "429": 0.02, "slow": 0.01} and plan.slow_seconds == 2 and plan.revoke_at == {50}
    again = FaultPlan.parse("5xx=0.05,drop=0.05,429=0.02,slow=0.01:2,revoke=@50", seed=1)
    assert [plan.next() for _ in range(200)] == [again.next() for _ in range(200)]
    with pytest.raises(ValueError):
        FaultPlan.parse("boom=1")


def _get(s, sb):
    return s.get(f"{sb.server}/restapi/v1.0/account/~/extension")


def test_5xx_drop_and_revoke_reach_the_client():
    with Sandbox(seed=5, size="tiny", faults="5xx=1", limits=False) as sb:
        r = _get(login(sb), sb)
        assert r.status_code in (500, 503) and r.json()["errors"]
    with Sandbox(seed=5, size="tiny", faults="drop=1", limits=False) as sb:
        with pytest.raises(requests.exceptions.RequestException):
            _get(login(sb), sb)
    with Sandbox(seed=5, size="tiny", faults="revoke=@2", limits=False) as sb:
        s = login(sb)
        assert _get(s, sb).status_code == 200
        assert _get(s, sb).status_code == 401
        assert _get(login(sb), sb).status_code == 200  # a fresh JWT login works again


def test_429_storm_is_a_penalty():
    with Sandbox(seed=5, size="tiny", faults="429=1") as sb:
        r = _get(login(sb), sb)
        assert r.status_code == 429 and r.headers["Retry-After"] == "60"
