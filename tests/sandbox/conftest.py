"""Fixtures for the sandbox tests: a running sandbox, a logged-in HTTP session, and the official
OpenAPI spec (vendored in tests/reference, loaded once per process) to validate responses."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from rcetl.sandbox import Sandbox

from ..reference import load_spec

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
def openapi() -> dict[str, Any]:
    return load_spec()
