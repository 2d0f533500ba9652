"""How many downloads of one connection run at once when no rate budget sets the pace.

Against RingCentral the budget binds (Heavy: 10 requests a minute per user), and the download pool
is sized from it (:func:`rcetl.executors.pools.threads_from_budget`). Against a server whose budget
does not bind -- an unlimited test server, a raised plan, a mirror on the same network -- the right
number of downloads in flight depends on where the time goes: with a server 100 ms away, eight
downloads at once are eight times as fast as one; with a server next door, the work is this
process's own CPU, and every download thread beyond what the cores keep busy only waits for the
interpreter lock, which it takes back after each of its system calls (measured: 5,000 recordings
from a local server, 2 cores: 3 downloads at once archived 11 % faster than 8, 4 downloads 8 %).

:class:`LatencyLimit` finds that number as TCP Vegas does for a connection's window (Brakmo and
Peterson, 1995): it compares the latency downloads see with the lowest seen so far. Whatever
exceeds that lowest latency is time spent queueing behind other downloads, so
``limit * (1 - lowest / latency)`` estimates how many downloads are queued rather than served.
Once per round (as many downloads as the limit), the limit grows by one while fewer than ``alpha``
are queued, shrinks by one while more than ``beta`` are, and stays in between. Against a distant
server, latency stays at its floor and the limit stays at its maximum. It never falls below
``beta`` on its own (fewer downloads cannot hold more than ``beta`` queued), so a lowest latency
that was luck, never seen again (it is kept for the run), costs at most the slots above three.

The latency measured is the time to a download's first byte (request sent, server's answer,
headers read): it grows with queueing, but not with the size of the file, so large recordings
are not taken for a busy server.

Written here rather than taken from a library: no well-kept Python package found applies such a
rule to a thread pool (what a search of package documentation found limits the threads of native
libraries, as threadpoolctl does), and the rule is a few lines.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

log = logging.getLogger(__name__)

#: Queued downloads (estimated) below which the limit grows, and above which it shrinks: TCP
#: Vegas's usual thresholds (one to three packets queued at the bottleneck).
ALPHA, BETA = 1.0, 3.0


class LatencyLimit:
    """A number of slots between ``minimum`` and ``maximum``, set by the latency of what runs in
    them. Thread-safe.

    A slot is held by a worker thread, not by a job: the thread takes one (:meth:`acquire`), runs
    job after job in it and reports each job's latency (:meth:`sample`: seconds to its first byte,
    or None when it has none: reused, gone, failed); only when the limit shrank below the slots
    held does a thread give its slot back (:meth:`release`) and wait for one again. In a steady
    state no thread is woken, none waits: a limit enforced per job woke a parked thread at every
    job's end, which cost as much as the threads it kept out (measured)."""

    def __init__(self, maximum: int, minimum: int = 1, *, alpha: float = ALPHA, beta: float = BETA) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError(f"need 1 <= minimum <= maximum, got {minimum} and {maximum}")
        self.maximum, self.minimum = maximum, minimum
        self.alpha, self.beta = alpha, beta
        self._limit = maximum  # start where a fixed pool would be: only shrink on evidence
        self._held = 0
        self._lowest: float | None = None
        self._round: list[float] = []
        self._changed = threading.Condition()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def held(self) -> int:
        return self._held

    def acquire(self) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._held < self._limit)
            self._held += 1

    def release(self) -> None:
        with self._changed:
            self._held -= 1
            self._changed.notify(max(self._limit - self._held, 0))

    def sample(self, latency: float | None) -> bool:
        """Note one job's latency; True when the caller's slot is one too many now (release it)."""
        with self._changed:
            if latency is not None and latency > 0:
                grew = self._sample(latency)
                if grew:
                    self._changed.notify(max(self._limit - self._held, 0))
            return self._held > self._limit

    def _sample(self, latency: float) -> bool:
        if self._lowest is None or latency < self._lowest:
            self._lowest = latency
        self._round.append(latency)
        if len(self._round) < self._limit:
            return False
        mean = sum(self._round) / len(self._round)
        self._round.clear()
        queued = self._limit * (1.0 - self._lowest / mean)
        before = self._limit
        if queued < self.alpha:
            self._limit = min(self._limit + 1, self.maximum)
        elif queued > self.beta:
            self._limit = max(self._limit - 1, self.minimum)
        if self._limit != before:
            log.debug("downloads at once: %d -> %d (latency %.2f ms, lowest %.2f ms, ~%.1f queued)",
                      before, self._limit, mean * 1e3, self._lowest * 1e3, queued)
        return self._limit > before


class LimitedThreadPool(Executor):
    """``threads`` worker threads of which only as many as ``limit`` allows take jobs; a job's
    result's ``first_byte_s`` is its latency.

    Written here rather than a ThreadPoolExecutor with a gate inside each job: its workers take a
    job before they could wait for a slot, so each job's end had to wake a parked worker holding
    the next one. Here a worker waits for a slot before it takes a job."""

    def __init__(self, threads: int, limit: LatencyLimit, thread_name_prefix: str = "rcetl-limited") -> None:
        self.limit = limit
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._shut = False
        self._threads = [threading.Thread(target=self._work, name=f"{thread_name_prefix}_{i}", daemon=True)
                         for i in range(threads)]
        for t in self._threads:
            t.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new jobs after shutdown")
            future: Future[Any] = Future()
            self._jobs.put((future, functools.partial(fn, *args, **kwargs)))
            return future

    def _work(self) -> None:
        self.limit.acquire()
        try:
            while (job := self._jobs.get()) is not None:
                future, call = job
                latency = None
                if future.set_running_or_notify_cancel():
                    try:
                        result = call()
                    except BaseException as exc:  # noqa: BLE001 - handed to the future's owner
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
                        latency = getattr(result, "first_byte_s", None)
                del job, future, call  # not kept alive while this worker waits for the next
                if self.limit.sample(latency):  # one worker too many now: wait for a slot again
                    self.limit.release()
                    self.limit.acquire()
        finally:
            self.limit.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._shut:
                return
            self._shut = True
            if cancel_futures:
                while True:
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is not None:
                        job[0].cancel()
            for _ in self._threads:
                self._jobs.put(None)  # one each: a worker takes one and ends, freeing its slot
        if wait:
            for t in self._threads:
                t.join()
