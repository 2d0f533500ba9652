"""RingCentral's public OpenAPI spec, vendored (see SOURCE.md): found wherever the clone lives."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

SPEC = Path(__file__).resolve().parent / "rc-public-openapi.yml"
SPEC_SHA256 = "f2393ea64be639b495b30c4a8c04549c5e45f252088942aa9af08a71073135c8"


@lru_cache(maxsize=1)
def load_spec() -> dict[str, Any]:
    """The parsed spec (about a second with libyaml; once per test process)."""
    import yaml

    with SPEC.open("rb") as fh:
        return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
