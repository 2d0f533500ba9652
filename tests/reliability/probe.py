"""Run the real ``rcetl`` command with a probe that pauses it inside one step, so a test can SIGKILL
it exactly there: ``python -m tests.reliability.probe run pipeline.yaml``.

``RCETL_PROBE="<step>|<occurrence>|<when>"`` names the pause: the ``occurrence``-th time (counted in
this process) the step happens, the probe writes ``<step>`` and a newline to the file descriptor
``RCETL_PROBE_FD`` and sleeps until the test kills the process. Steps, all on rcetl's public
interfaces (the subclasses of ``rcetl.Stream``, ``rcetl.RecordSink``, ``rcetl.BlobSink``) and the
state store:

- ``listing``: a stream's ``read`` has yielded ``occurrence`` records of its listing;
- ``download``: a download has written its first bytes to the spool file (the rest not yet);
- ``record:<sink name>`` / ``blob:<sink name>``: a sink's ``write_prepared`` (else ``write``) / ``store`` (``when=before``:
  called, nothing written yet; ``when=after``: it returned, the engine not told yet);
- ``checkpoint``: ``StateStore.put_checkpoint`` (before or after, as above).

The probe changes nothing the run does: it only pauses a thread. Nothing is mocked.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections import Counter
from typing import Any

STEP, OCCURRENCE, WHEN = (os.environ.get("RCETL_PROBE") or "none|0|before").split("|")
_counts: Counter[str] = Counter()
_lock = threading.Lock()


def _reached(step: str) -> bool:
    if step != STEP:
        return False
    with _lock:
        _counts[step] += 1
        return _counts[step] == int(OCCURRENCE)


def _pause(step: str) -> None:
    os.write(int(os.environ["RCETL_PROBE_FD"]), f"{step}\n".encode())
    time.sleep(120)  # the test SIGKILLs the process now; were it not to, the run stalls visibly
    raise SystemExit(f"probe: not killed within 120 s at {step}")


def _around(step_of: Any, method: Any) -> Any:
    @functools.wraps(method)
    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        step = step_of(self)
        hit = _reached(step)
        if hit and WHEN == "before":
            _pause(step)
        result = method(self, *args, **kwargs)
        if hit:
            _pause(step)
        return result

    spy.__probe__ = True  # type: ignore[attr-defined]
    return spy


def _listing(method: Any) -> Any:
    @functools.wraps(method)
    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        for item in method(self, *args, **kwargs):
            yield item
            if _reached("listing"):
                _pause("listing")

    spy.__probe__ = True  # type: ignore[attr-defined]
    return spy


class _FirstWrite:
    """The spool file a download writes into, pausing after its first write."""

    def __init__(self, out: Any) -> None:
        self._out, self._written = out, False

    def write(self, data: Any) -> Any:
        n = self._out.write(data)
        if not self._written:
            self._written = True
            if _reached("download"):
                _pause("download")
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._out, name)


def _download(method: Any) -> Any:
    @functools.wraps(method)
    def spy(self: Any, ref: Any, out: Any, *args: Any, **kwargs: Any) -> Any:
        return method(self, ref, _FirstWrite(out), *args, **kwargs)

    spy.__probe__ = True  # type: ignore[attr-defined]
    return spy


def _wrap_class(cls: type) -> None:
    import rcetl

    own = cls.__dict__
    plans: dict[str, Any] = {}
    if issubclass(cls, rcetl.Stream):
        plans = {"read": _listing, "download": _download}
    elif issubclass(cls, rcetl.RecordSink):
        # The engine writes a batch through write_prepared (after prepare made its rows); a sink
        # that keeps the default reaches its write from there, one that overrides it may not.
        step = "write_prepared" if "write_prepared" in own else "write"
        plans = {step: functools.partial(_around, lambda s: f"record:{s.name}")}
    elif issubclass(cls, rcetl.BlobSink):
        plans = {"store": functools.partial(_around, lambda s: f"blob:{s.name}")}
    for name, wrap in plans.items():
        method = own.get(name)
        if callable(method) and not getattr(method, "__probe__", False) and not getattr(method, "__isabstractmethod__", False):
            setattr(cls, name, wrap(method))


def _wrap_tree(base: type) -> None:
    for sub in base.__subclasses__():
        _wrap_class(sub)
        _wrap_tree(sub)


def install() -> None:
    import rcetl
    from rcetl.state import StateStore

    StateStore.put_checkpoint = _around(lambda s: "checkpoint", StateStore.put_checkpoint)  # type: ignore[method-assign]
    bases = (rcetl.Stream, rcetl.RecordSink, rcetl.BlobSink)
    for base in bases:
        _wrap_tree(base)

        # Plugins are imported lazily (after this): wrap each class as it is defined.
        def hook(cls: type, _base: type = base, _previous: Any = base.__dict__.get("__init_subclass__"),
                 **kw: Any) -> None:
            if _previous is None:
                super(_base, cls).__init_subclass__(**kw)
            else:
                _previous.__func__(cls, **kw)
            _wrap_class(cls)

        base.__init_subclass__ = classmethod(hook)  # type: ignore[assignment]


if __name__ == "__main__":
    install()
    from rcetl.cli.main import main

    sys.argv = ["rcetl", *sys.argv[1:]]
    sys.exit(main())
