"""Cross-thread and cross-process coordination for plugins: named locks and a small shared store.

The RingCentral connection keeps its token here so that every thread, process and worker that
shares a credential uses one token and only one of them refreshes it (a refresh invalidates the
previous refresh token). Local runs use file locks beside the state store; Celery workers use Redis.
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class Coordinator(abc.ABC):
    @abc.abstractmethod
    def lock(self, name: str, timeout: float = 60.0) -> contextlib.AbstractContextManager[None]:
        """An exclusive lock across threads and processes of this coordinator's scope."""

    @abc.abstractmethod
    def get(self, name: str) -> dict[str, Any] | None:
        """A JSON value stored under ``name``, or None."""

    @abc.abstractmethod
    def put(self, name: str, value: dict[str, Any]) -> None:
        """Store a JSON value (owner-only permissions where it touches disk)."""


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]


class FileCoordinator(Coordinator):
    """Locks with ``fcntl.flock`` on files in a private folder; values as 0600 JSON files.

    Written by hand because the standard library has flock and no maintained package adds
    anything a single-host lock needs here (``filelock`` would do the same with more code paths).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        missing = []
        probe = self.folder
        while not probe.is_dir():
            missing.append(probe)
            probe = probe.parent
        for level in reversed(missing):  # every folder we create is owner-only, whatever the umask
            level.mkdir(mode=0o700, exist_ok=True)
            os.chmod(level, 0o700)
        self._thread_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._values: dict[str, str] = {}  # name -> its value file's path
        # name -> (the value file's identity when last parsed, the value): a token is read on every
        # request, and a stat is all it takes to see that no process has replaced the file since.
        self._seen: dict[str, tuple[tuple[int, int, int, int], dict[str, Any]]] = {}

    def _thread_lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._thread_locks.setdefault(name, threading.Lock())

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float = 60.0) -> Iterator[None]:
        tl = self._thread_lock(name)
        if not tl.acquire(timeout=timeout):
            raise TimeoutError(f"lock {name!r} not acquired in {timeout}s")
        try:
            path = self.folder / f"{_safe_name(name)}.lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        finally:
            tl.release()

    def _value_path(self, name: str) -> str:
        path = self._values.get(name)
        if path is None:
            path = self._values[name] = str(self.folder / f"{_safe_name(name)}.json")
        return path

    def get(self, name: str) -> dict[str, Any] | None:
        path = self._value_path(name)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        # put() replaces the file (a new inode); any writer changes mtime/ctime or size.
        identity = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        seen = self._seen.get(name)
        if seen is not None and seen[0] == identity:
            return dict(seen[1])
        try:
            # Read after the stat: the value is at least as new as the identity it is kept under
            # (a replacement in between is read again at the next call, never missed).
            with open(path, "rb") as fh:
                found: dict[str, Any] = json.loads(fh.read())
        except (FileNotFoundError, ValueError):
            return None
        if isinstance(found, dict):
            self._seen[name] = (identity, found)
        return dict(found) if isinstance(found, dict) else found

    def put(self, name: str, value: dict[str, Any]) -> None:
        path = Path(self._value_path(name))
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(value, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (a folder or lock named after a pid may be
    a killed run's leftovers). A process of another user counts as alive: it may not be touched."""
    try:
        os.kill(pid, 0)  # signal 0: existence and permission check only, nothing is sent
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
