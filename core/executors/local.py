"""The default executor: tasks in a thread pool of this process (the work is I/O-bound)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from . import Executor

if TYPE_CHECKING:
    from ..engine.session import RunSession
    from ..engine.tasks import StreamTask, TaskResult


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, workers: int = 4) -> None:
        self.workers = workers

    def run(self, session: RunSession, tasks: list[StreamTask],
            on_done: Callable[[TaskResult], None] | None = None) -> list[TaskResult]:
        results: list[TaskResult] = []
        with ThreadPoolExecutor(max_workers=max(1, self.workers), thread_name_prefix="rcetl-task") as pool:
            pending: set[Future[TaskResult]] = {pool.submit(session.run_task, t) for t in tasks}
            try:
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        res = fut.result()
                        results.append(res)
                        if on_done:
                            on_done(res)
            except KeyboardInterrupt:
                session.stop_event.set()
                for fut in pending:
                    fut.cancel()
                raise
        return results
