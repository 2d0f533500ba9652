"""Fixtures for the sandbox tests: a running sandbox, a logged-in HTTP session, and the official
OpenAPI spec (loaded once, cached as JSON under pytest's cache dir) to validate responses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from rcetl.sandbox import Sandbox

SPEC = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "rc-public-openapi.yml"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def login(sb: Sandbox, account: int = 0) -> requests.Session:
    s = requests.Session()
    r = s.post(f"{sb.server}/restapi/oauth/token", auth=(sb.client_id, sb.client_secret),
               data={"grant_type": JWT_GRANT, "assertion": sb.accounts[account]["jwt"]})
    r.raise_for_status()
    s.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    return s


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(seed=7, size="tiny", limits=False) as sb:
        yield sb


@pytest.fixture(scope="module")
def api(sandbox):
    return login(sandbox)


@pytest.fixture(scope="session")
def openapi(request) -> dict[str, Any]:
    if not SPEC.exists():
        pytest.skip(f"RingCentral OpenAPI spec not found at {SPEC.resolve()} (shared/reference is missing)")
    cache = request.config.cache.mkdir("rc-openapi") / f"spec-{SPEC.stat().st_mtime_ns}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    import yaml

    spec = yaml.load(SPEC.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    tmp = cache.with_suffix(f".{id(spec)}.tmp")
    tmp.write_text(json.dumps(spec, default=str))
    tmp.replace(cache)  # atomic: xdist workers may race
    return spec
