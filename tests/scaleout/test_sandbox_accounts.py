"""Sandbox accounts (the RingCentral simulator, standard rate limits on a scaled clock) archived by
two workers: every account's recordings complete and byte-exact, and not one 429."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.scaleout.conftest import run_json

ACCOUNTS = 3
SCALE = 120.0


@pytest.fixture
def sandbox():
    from rcetl.sandbox import Sandbox

    with Sandbox(seed=9, size="tiny", time_scale=SCALE, accounts=ACCOUNTS) as sb:
        yield sb


def test_sandbox_accounts_on_two_workers(scenario, workers, sandbox):
    sb, s = sandbox, scenario.services
    env = {"RC_SERVER": sb.server, "RC_MEDIA": sb.media_server, "RC_CLIENT_ID": sb.client_id,
           "RC_CLIENT_SECRET": sb.client_secret, **{f"RC_JWT_{i}": a["jwt"] for i, a in enumerate(sb.accounts)}}
    doc = {
        "pipeline": scenario.pipeline_name,
        # secrets stay in each process's environment; the file (and the task messages) hold ${VAR}s
        "ringcentral": [{"name": f"acct{i}", "server": "${RC_SERVER}", "media_server": "${RC_MEDIA}",
                         "client_id": "${RC_CLIENT_ID}", "client_secret": "${RC_CLIENT_SECRET}",
                         "jwt": f"${{RC_JWT_{i}}}", "time_scale": SCALE} for i in range(ACCOUNTS)],
        "state": s.postgres,
        "budgets": {"backend": "redis", "url": s.redis},
        "executor": {"broker": s.amqp, "backend": s.redis, "queue": scenario.queue},
        "sources": {"call-log": {}, "recording": {}, "message-store": {}},
        "sinks": {"db": {"plugin": "postgres", "url": s.postgres, "table_prefix": scenario.table_prefix},
                  "files": {"plugin": "filesystem", "path": str(scenario.files), "fsync": False,
                            "key": "{account}/{kind}/{id}.{ext}"}},
    }
    pipeline = scenario.tmp / "pipeline.yaml"
    pipeline.write_text(json.dumps(doc))
    assert sb.jwt not in pipeline.read_text()
    workers.start(2, concurrency=2, env=env)

    summary = run_json(pipeline, "--executor", "celery", env=env, timeout=180)
    assert summary["status"] == "ok", summary["errors"]
    assert sb.counters()["throttled"] == 0, "no 429: the workers shared each account's budget"

    truth = sb.ground_truth()["accounts"]
    for acct in truth:
        want = {str(r["id"]): r["sha256"] for r in acct["recordings"] if r["available"]}
        folder = scenario.files / str(acct["account_id"]) / "recording"
        got = {p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*") if p.suffix != ".json"}
        assert want and got == want, f"account {acct['account_id']}: recordings differ"
    assert summary["streams"]["call-log"]["records"] == sum(len(a["call_log"]) for a in truth)
    assert len(summary["requests"]) == ACCOUNTS
