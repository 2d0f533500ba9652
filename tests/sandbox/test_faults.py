"""Fault injection: reproducible by seed, each kind visible to a client."""

from __future__ import annotations

import hashlib

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


def test_route_filters_parse_and_apply():
    plan = FaultPlan.parse("drop=0.2@content,5xx=0.1@list|sync,slow=1:30@message-sync,token503=0.5", seed=1)
    assert plan.routes == {"drop": ("content",), "5xx": ("list", "sync"), "slow": ("message-sync",)}
    assert plan.rates["token503"] == 0.5 and plan.slow_seconds == 30
    for bad in ("drop=0.2@", "token503=0.5@content", "5xx=0.1:3"):
        with pytest.raises(ValueError):
            FaultPlan.parse(bad)
    # a filter only hides faults: the other requests see the same decisions as without it
    free, only = FaultPlan.parse("5xx=0.3", seed=2), FaultPlan.parse("5xx=0.3@content", seed=2)
    for i in range(100):
        route = "recording-content" if i % 2 else "account-call-log"
        a, b = free.next(route), only.next(route)
        assert b == (a if route == "recording-content" else [])
    with Sandbox(seed=5, size="tiny", faults="5xx=1@content", limits=False) as sb:
        s = login(sb)
        assert _get(s, sb).status_code == 200
        rec = next(r for r in sb.ground_truth()["accounts"][0]["recordings"] if r["available"])
        assert s.get(f"{sb.server}/restapi/v1.0/account/~/recording/{rec['id']}").status_code == 200
        content = s.get(f"{sb.media_server}/restapi/v1.0/account/~/recording/{rec['id']}/content")
        assert content.status_code in (500, 503) and content.json()["errors"]


def test_slow_is_on_the_scaled_clock(monkeypatch):
    from types import SimpleNamespace

    from rcetl.sandbox import app as app_module

    slept = []
    monkeypatch.setattr(app_module, "time", SimpleNamespace(sleep=slept.append))
    with Sandbox(seed=5, size="tiny", faults="slow=1:30", time_scale=60.0, limits=False) as sb:
        assert _get(login(sb), sb).status_code == 200
    assert slept == [0.5]  # 30 API seconds at 60x


def test_token_503(openapi):
    from ringcentral import SDK

    from .rc_spec import check

    with Sandbox(seed=5, size="tiny", faults="token503=1", limits=False) as sb:
        r = requests.post(f"{sb.server}/restapi/oauth/token", auth=(sb.client_id, sb.client_secret),
                          data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": sb.jwt})
        assert r.status_code == 503 and check(openapi, "token", r, "post")["errors"][0]["errorCode"] == "CMN-211"
        with pytest.raises(Exception):  # noqa: B017 - the SDK raises its own ApiException
            SDK(sb.client_id, sb.client_secret, sb.server).platform().login(jwt=sb.jwt)
    with Sandbox(seed=5, size="tiny", faults="token503=0.5", limits=False) as sb:
        statuses = {requests.post(f"{sb.server}/restapi/oauth/token", auth=(sb.client_id, sb.client_secret),
                                  data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                        "assertion": sb.jwt}).status_code for _ in range(12)}
        assert statuses == {200, 503}


def _recording_urls(sb):
    rec = next(r for r in sb.ground_truth()["accounts"][0]["recordings"] if r["available"])
    return rec, f"{sb.media_server}/restapi/v1.0/account/~/recording/{rec['id']}/content"


@pytest.mark.parametrize(("kind", "content_type"), [("html", "text/html"), ("json200", "application/json")])
def test_download_answered_200_with_a_page_or_an_error_body(kind, content_type):
    with Sandbox(seed=5, size="tiny", faults=f"{kind}=#2@recording-content", limits=False) as sb:
        s = login(sb)
        rec, url = _recording_urls(sb)
        for _ in range(2):  # the first two downloads are faulted, then the real bytes come
            r = s.get(url)
            assert r.status_code == 200 and r.headers["Content-Type"].startswith(content_type)
            assert hashlib.sha256(r.content).hexdigest() != rec["sha256"]
        assert kind != "json200" or r.json()["errors"][0]["errorCode"] == "CMN-211"
        r = s.get(url)
        assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == rec["sha256"]
        assert _get(s, sb).headers["Content-Type"].startswith("application/json")  # other routes untouched


def test_empty_and_truncated_downloads():
    with Sandbox(seed=5, size="tiny", faults="empty=#1@content", limits=False) as sb:
        s = login(sb)
        rec, url = _recording_urls(sb)
        r = s.get(url)
        assert r.status_code == 200 and r.content == b"" and r.headers["Content-Length"] == "0"
        assert r.headers["Content-Type"] == rec["content_type"]
    with Sandbox(seed=5, size="tiny", faults="truncate=1@recording-content", limits=False) as sb:
        s = login(sb)
        rec, url = _recording_urls(sb)
        with s.get(url, stream=True) as r:
            assert r.status_code == 200 and int(r.headers["Content-Length"]) == rec["size"]
            got = bytearray()
            with pytest.raises(requests.exceptions.RequestException):
                for chunk in r.iter_content(1):  # byte by byte: a failed read loses nothing
                    got += chunk
        assert len(got) == rec["size"] * 9 // 10  # the promised length never arrives


def test_429_with_an_absurd_retry_after():
    with Sandbox(seed=5, size="tiny", faults="429long=#1") as sb:
        s = login(sb)
        r = _get(s, sb)
        assert r.status_code == 429 and r.headers["Retry-After"] == "999999999"
        assert r.headers["X-Rate-Limit-Group"] == "medium" and r.json()["errors"][0]["errorCode"] == "CMN-301"
        assert _get(s, sb).status_code == 200  # no penalty was started


def test_first_n_and_fraction_parse():
    plan = FaultPlan.parse("html=#3@content,empty=0.25,429long=#1@recording-content", seed=1)
    assert plan.first == {"html": 3, "429long": 1} and plan.rates == {"empty": 0.25}
    routes = ["recording-content", "message-list", "attachment-content"] * 4
    html = [any(f.kind == "html" for f in plan.next(r)) for r in routes]
    assert html == [r != "message-list" for r in routes][:5] + [False] * 7  # first 3 content requests only
    for bad in ("html=#0", "revoke=#2", "token503=#1", "html=#x"):
        with pytest.raises(ValueError):
            FaultPlan.parse(bad)
