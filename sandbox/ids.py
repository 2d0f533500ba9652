"""Deterministic identifiers and pseudo-random numbers derived from (seed, parts).

Everything the sandbox serves must come out the same for the same seed, so ids and binary
contents are pure functions of the seed and a path of parts, never of generation order alone.
"""

from __future__ import annotations

import base64
import hashlib
import random

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

# One above the largest integer a float holds exactly: ids from here on break any client that
# lets a message id pass through a JavaScript number or a Python float.
BEYOND_FLOAT = (1 << 53) + 1


def digest(*parts: object) -> bytes:
    text = "\x1f".join(str(p) for p in parts).encode()
    return hashlib.blake2b(text, digest_size=16).digest()


def det_int(*parts: object) -> int:
    """A 64-bit integer that depends only on ``parts``."""
    return int.from_bytes(digest(*parts)[:8], "big")


def det_rng(*parts: object) -> random.Random:
    return random.Random(det_int(*parts))


def alnum_id(length: int, *parts: object) -> str:
    """A base64-looking id such as call-log ids (``VgLcd1KWffJVzUA``): letters and digits only,
    so it is safe in a path and in a comma-separated batch."""
    n = int.from_bytes(digest(*parts) + digest("more", *parts), "big")
    out = []
    for _ in range(length):
        n, r = divmod(n, len(_ALNUM))
        out.append(_ALNUM[r])
    return "".join(out)


def rng_alnum(rng: random.Random, length: int = 15) -> str:
    """A call-log-style id drawn from a seeded generator (cheaper than hashing, for bulk data)."""
    raw = base64.b64encode(rng.getrandbits(8 * length).to_bytes(length, "big")).decode()
    return raw.replace("+", "x").replace("/", "Q")[:length]
