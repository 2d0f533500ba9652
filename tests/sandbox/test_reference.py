"""The vendored spec is the one SOURCE.md names, so no test validates against a silently edited copy."""

from __future__ import annotations

import hashlib

from ..reference import SPEC, SPEC_SHA256


def test_vendored_spec_is_the_recorded_version():
    assert hashlib.sha256(SPEC.read_bytes()).hexdigest() == SPEC_SHA256
    assert SPEC_SHA256 in (SPEC.parent / "SOURCE.md").read_text()
