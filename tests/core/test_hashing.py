"""core/hashing.py: small pieces are hashed without letting hashlib hand the GIL to another thread
(a hand-off per hash call cost more than the hashing of a recording of a few KB), and the digest is
the same as hashing the bytes at once."""

from __future__ import annotations

import hashlib
import os

import pytest

from rcetl.hashing import GIL_MINSIZE, SMALL, feed


class _Pieces:
    """A hash object that records the size of every piece it is given."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.pieces: list[int] = []

    def update(self, data: bytes | memoryview) -> None:
        self.pieces.append(len(data))
        self.sha.update(data)


@pytest.mark.parametrize("size", [0, 1, GIL_MINSIZE - 1, GIL_MINSIZE, 3_000, 24_044, SMALL - 1, SMALL, 3 * SMALL])
def test_the_digest_is_that_of_the_bytes_at_once(size: int) -> None:
    data = os.urandom(size)
    pieces = _Pieces()
    feed(pieces, data)
    assert pieces.sha.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_small_piece_is_fed_below_the_size_at_which_hashlib_lets_go_of_the_gil() -> None:
    pieces = _Pieces()
    feed(pieces, os.urandom(24_044))  # a sandbox recording of a few seconds
    assert pieces.pieces and max(pieces.pieces) < GIL_MINSIZE


def test_a_large_piece_is_hashed_at_once_with_the_gil_released() -> None:
    pieces = _Pieces()
    feed(pieces, os.urandom(SMALL))
    assert pieces.pieces == [SMALL]  # other threads' work overlaps the hashing of a large chunk
