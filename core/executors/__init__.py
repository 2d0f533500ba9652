"""Executors run a run's tasks: in threads of this process (local) or on Celery workers.

Both take the same tasks and give back the same :class:`~rcetl.engine.tasks.TaskResult` list,
so a pipeline file runs unchanged with either.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine.session import RunSession
    from ..engine.tasks import StreamTask, TaskResult


class Executor(abc.ABC):
    name: str

    @abc.abstractmethod
    def run(self, session: RunSession, tasks: list[StreamTask],
            on_done: Callable[[TaskResult], None] | None = None) -> list[TaskResult]:
        """Run every task of ``session``; return one result per task (a failed task is a result,
        not an exception)."""


def get_executor(name: str, **options: object) -> Executor:
    if name == "celery":
        from .celery import CeleryExecutor

        return CeleryExecutor(**options)  # type: ignore[arg-type]
    from .local import LocalExecutor

    return LocalExecutor(**options)  # type: ignore[arg-type]
