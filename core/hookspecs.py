"""Every hook rcetl calls. Each docstring says when the hook is called and what it may return.

Plugins implement these with ``@rcetl.hookimpl`` (pluggy's marker: ``tryfirst``, ``trylast``,
``wrapper`` and ``hookwrapper`` work as pluggy documents). The core never calls them directly: it
goes through :class:`rcetl.registry.PluginManager`'s typed methods, which call ``pm.hook.<name>``. ``docs/hooks.md`` documents each
hook and ``tests/core/test_meta.py`` checks that every hook here is documented and tested.
"""

# mypy: disable-error-code="empty-body"
# (Hook specifications are signatures with a docstring: pluggy never calls their bodies.)

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Sequence

    import typer

    from .interfaces import ConnectionSpec, EmbeddedServerSpec, ObserverSpec, SinkEntry, SourceSpec
    from .records import ArchivedRecord, Record
    from .run import RunInfo, RunSummary

PROJECT = "rcetl"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registry: what a plugin contributes -------------------------------------------------------


@hookspec
def rcetl_sources() -> list[SourceSpec]:
    """Called once when the registry loads; return the source plugins this package provides."""


@hookspec
def rcetl_sinks() -> list[SinkEntry]:
    """Called once when the registry loads; return the sink plugins this package provides, each a
    name and the dotted path of its class (imported only when a pipeline uses the sink)."""


@hookspec
def rcetl_connections() -> list[ConnectionSpec]:
    """Called once when the registry loads; return the API connection types this package provides
    (a connection holds one credential, one token and one rate budget shared by its sources)."""


@hookspec
def rcetl_embedded_servers() -> list[EmbeddedServerSpec]:
    """Called once when the registry loads; return servers that run inside rcetl's process
    (the RingCentral sandbox), which a connection may name instead of a URL (``server: sandbox``)."""


@hookspec
def rcetl_observers() -> list[ObserverSpec]:
    """Called once when the registry loads; return the observers this package provides, each with
    the model of its options (a pipeline's ``observers: {name: {...}}``), so that a pipeline file's
    observer options are validated with the rest of the file, before any run."""


@hookspec
def rcetl_cli(app: typer.Typer) -> None:
    """Called once when the ``rcetl`` command starts; add commands or groups to ``app``
    (``app.add_typer(...)``). Must be cheap: import heavy modules inside the commands."""


# --- observers: told what happens, may not change it -------------------------------------------


@hookspec
def rcetl_run_started(run: RunInfo) -> None:
    """Called when a run has validated its pipeline and is about to make its first request."""


@hookspec
def rcetl_run_finished(run: RunInfo, summary: RunSummary) -> None:
    """Called once when a run ends, successfully or not, with its summary. Exceptions are
    logged and ignored, so a broken notifier never fails an archive."""


@hookspec
def rcetl_item_archived(run: RunInfo, item: ArchivedRecord) -> None:
    """Called after a record and its binaries are durably stored in every sink of its stream.
    Called from worker threads: keep it fast and thread-safe."""


@hookspec
def rcetl_items_archived(run: RunInfo, items: Sequence[ArchivedRecord]) -> None:
    """Called once per batch with every record of it that is durably stored in every sink of its
    stream (the batch form of ``rcetl_item_archived``: one call per batch instead of one per record,
    which a backfill of millions of calls feels). Called from worker threads."""


@hookspec
def rcetl_item_failed(run: RunInfo, record: Record, error: str) -> None:
    """Called when a record (or one of its binaries) could not be archived and was put in the
    failed-item queue to be retried on a later run."""


@hookspec
def rcetl_budget_exhausted(run: RunInfo | None, budget: str, group: str, wait_seconds: float) -> None:
    """Called when a request must wait for a rate budget (its group's window is spent or a
    penalty is running); ``wait_seconds`` is how long it will wait."""


#: Hooks that only return what a plugin provides: asked again without a plugin that raised.
DECLARATIVE_HOOKS = frozenset(
    {"rcetl_sources", "rcetl_sinks", "rcetl_connections", "rcetl_embedded_servers", "rcetl_observers"}
)


def all_hook_names() -> list[str]:
    """The names of every hook declared here, in file order (used by the meta-tests)."""
    return [name for name, value in globals().items() if name.startswith("rcetl_") and callable(value)]


def hook_doc(name: str) -> str:
    fn: Any = globals()[name]
    return (fn.__doc__ or "").strip()
