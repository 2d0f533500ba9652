"""The endpoint -> API group table must say what RingCentral's spec says (x-throttling-group)."""

from __future__ import annotations

import pytest
import yaml

from rcetl.plugins.sources.ringcentral import throttling

from ..reference import SPEC  # vendored: found wherever the clone lives


@pytest.fixture(scope="module")
def spec_paths() -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC.open() as fh:
        return yaml.load(fh, Loader=loader)["paths"]


@pytest.mark.parametrize(("method", "template", "group"), throttling.ENDPOINTS)
def test_group_matches_spec(spec_paths: dict, method: str, template: str, group: str) -> None:
    assert template in spec_paths, f"{template} is not an operation of the spec"
    operation = spec_paths[template][method.lower()]
    assert operation["x-throttling-group"] == group


@pytest.mark.parametrize(
    ("method", "url", "group"),
    [
        ("GET", "https://platform.ringcentral.com/restapi/v1.0/account/~/call-log?dateFrom=x", "Heavy"),
        ("GET", "https://media.ringcentral.com:443/restapi/v1.0/account/1/recording/R1/content", "Heavy"),
        ("GET", "https://platform.ringcentral.com/restapi/v1.0/account/~/extension", "Medium"),
        ("GET", "https://platform.ringcentral.com/restapi/v1.0/account/~/extension/5/message-store", "Light"),
        ("GET", "https://platform.ringcentral.com/restapi/v1.0/account/~/extension/5/message-store/1,2,3", "Light"),
        ("GET", "https://media.ringcentral.com/restapi/v1.0/account/1/extension/5/message-store/1/content/2", "Medium"),
        ("GET", "https://platform.ringcentral.com/restapi/v1.0/account/~/extension/5/message-sync", "Light"),
        ("GET", "https://platform.ringcentral.com/restapi/v1.0/account/~", "Light"),
        ("POST", "https://platform.ringcentral.com/restapi/oauth/token", "Auth"),
        ("GET", "https://platform.ringcentral.com/restapi/v1.0/unknown/thing", "Heavy"),  # scarcest when unknown
    ],
)
def test_group_for_urls(method: str, url: str, group: str) -> None:
    assert throttling.group_for(method, url) == group


def test_group_names_case_insensitive_and_overrides_scaled() -> None:
    assert throttling.canonical_group("heavy") == "Heavy"
    limits = throttling.default_limits(60.0, {"heavy": 20})
    assert limits["Heavy"].limit == 20 and limits["Light"].limit == 50
    assert limits["Heavy"].window == pytest.approx(1.0)
