"""Run jobs in worker processes, results in job order, surviving a worker that dies.

A decoder that segfaults (or aborts, or is killed for memory) on one file takes its worker
process with it; ``multiprocessing.Pool`` then waits forever for that job. Here a dead worker
breaks the pool, the jobs that were in flight are retried one per fresh process, the one that
dies again is answered by ``crashed(job)``, and a fresh pool takes the rest.

Example:
    >>> list(map_in_order(abs, [-1, 2, -3], workers=2, crashed=lambda job: None))
    [1, 2, 3]
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

J = TypeVar("J")
R = TypeVar("R")

AHEAD = 2  # jobs submitted per worker ahead of the one being waited for


def _context() -> multiprocessing.context.BaseContext:
    # fork where available: workers only run numpy/soundfile/soxr; spawn fails from a REPL/stdin
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def map_in_order(
    fn: Callable[[J], R], jobs: Sequence[J], workers: int, crashed: Callable[[J], R]
) -> Iterator[R]:
    """``fn(job)`` for every job in ``workers`` processes, yielded in job order.

    ``fn`` must be picklable (a module-level function). A job whose worker dies twice (once in
    the pool, once alone) yields ``crashed(job)`` instead; the others are unaffected.
    """
    start = 0
    while start < len(jobs):
        lost: list[int] = []
        yield from _run_pool(fn, jobs, start, workers, lost)
        if not lost:
            return
        for k in lost:
            yield _run_alone(fn, jobs[k], crashed)
        start = lost[-1] + 1


def _run_pool(
    fn: Callable[[J], R], jobs: Sequence[J], start: int, workers: int, lost: list[int]
) -> Iterator[R]:
    """Yield results from ``start`` on; on a dead worker, fill ``lost`` with the jobs in flight."""
    pool = ProcessPoolExecutor(workers, mp_context=_context())
    inflight: deque[tuple[int, Future[R]]] = deque()
    following = start
    try:
        while following < len(jobs) or inflight:
            while following < len(jobs) and len(inflight) < AHEAD * workers:
                inflight.append((following, pool.submit(fn, jobs[following])))
                following += 1
            try:
                result = inflight[0][1].result()
            except BrokenProcessPool:
                lost.extend(k for k, _ in inflight)
                return
            inflight.popleft()
            yield result
    finally:
        pool.shutdown(wait=not lost, cancel_futures=True)


def _run_alone(fn: Callable[[J], R], job: J, crashed: Callable[[J], R]) -> R:
    """``fn(job)`` in a process of its own; ``crashed(job)`` if that process dies."""
    with ProcessPoolExecutor(1, mp_context=_context()) as solo:
        try:
            return solo.submit(fn, job).result()
        except BrokenProcessPool:
            return crashed(job)
