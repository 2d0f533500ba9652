"""What the core hands to plugins: the run's shared services, behind small interfaces."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .stopping import StopSignal

if TYPE_CHECKING:
    from .budget import BudgetProvider
    from .coordination import Coordinator


@dataclass
class RunContext:
    """Shared by every plugin of a run. Thread-safe services only."""

    pipeline: str
    budgets: BudgetProvider
    coordinator: Coordinator
    spool_dir: Path
    base_dir: Path  # the pipeline file's folder: relative paths in options resolve against it
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("rcetl"))
    embedded_servers: Mapping[str, Any] = field(default_factory=dict)
    #: Set when the run is stopping (Ctrl-C, SIGTERM): long waits and transfers watch it
    #: (``rcetl.stop_signal(ctx)``); outside a run it never fires.
    stop: StopSignal = field(default_factory=StopSignal)

    @classmethod
    def standalone(cls, folder: str | Path, pipeline: str = "standalone") -> RunContext:
        """A context for plugins used outside a run (tests, benchmarks, a plugin's own commands):
        memory budgets, file locks in ``folder/.locks``, a spool in ``folder/.spool``, and relative
        paths resolving in ``folder``. The engine builds the context of a run itself."""
        from .budget.memory import MemoryBudgetProvider  # here: the engine never needs them
        from .coordination import FileCoordinator

        base = Path(folder)
        spool = base / ".spool"
        spool.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(pipeline=pipeline, budgets=MemoryBudgetProvider(), coordinator=FileCoordinator(base / ".locks"),
                   spool_dir=spool, base_dir=base, logger=logging.getLogger(f"rcetl.{pipeline}"))

    def resolve(self, path: str | Path) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)
