"""SHA-256 of small pieces without handing the GIL to another thread for each one.

CPython's hashlib lets other threads run while it hashes a piece of 2,048 bytes or more, and once a
hash object has done that it does so for every later piece, however small. A recording of a few KB
then costs a GIL hand-off per hash call: another thread is woken and the hashing thread waits to
get the interpreter back, which with eight download threads costs far more (tens of microseconds,
a context switch each way) than hashing the bytes (about a microsecond per KB). Pieces below
:data:`SMALL` are therefore fed in slices under that threshold; larger ones are hashed with the GIL
released, where other threads' work can overlap it. (No library offers this; it is a property of
the interpreter's hashlib, checked by tests/core/test_hashing.py.)
"""

from __future__ import annotations

from typing import Any

#: hashlib releases the GIL for pieces of this many bytes or more (CPython's HASHLIB_GIL_MINSIZE).
GIL_MINSIZE = 2048
#: Pieces shorter than this are hashed in slices that keep the GIL (a hand-off costs more).
SMALL = 64 * 1024


def feed(sha: Any, data: bytes | bytearray | memoryview) -> None:
    """``sha.update(data)``; a small piece in slices that never let hashlib release the GIL."""
    n = len(data)
    if n < GIL_MINSIZE or n >= SMALL:
        sha.update(data)
        return
    view = memoryview(data)
    step = GIL_MINSIZE - 1
    for start in range(0, n, step):
        sha.update(view[start : start + step])
