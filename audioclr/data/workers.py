"""Run jobs in worker processes, results in job order, surviving a worker that dies.

A decoder that segfaults (or aborts, or is killed for memory) on one file takes its worker
process with it; ``multiprocessing.Pool`` then waits forever for that job. Here a dead worker
breaks the pool, the jobs that were in flight are retried one per fresh process, the one that
dies again is answered by ``crashed(job)``, and a fresh pool takes the rest.

Workers die with their parent: on Linux the kernel sends them SIGKILL when it dies (even by
SIGKILL, ``prctl(PR_SET_PDEATHSIG)``), elsewhere a watchdog thread in each worker exits when
its parent is gone; they ignore Ctrl-C (the parent handles it), and any exit other than the
normal end (an exception, an abandoned iterator) kills them instead of waiting for their jobs.

Example:
    >>> list(map_in_order(abs, [-1, 2, -3], workers=2, crashed=lambda job: None))
    [1, 2, 3]
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

J = TypeVar("J")
R = TypeVar("R")

AHEAD = 2  # jobs submitted per worker ahead of the one being waited for
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _context() -> multiprocessing.context.BaseContext:
    # fork where available: workers only run numpy/soundfile/soxr; spawn fails from a REPL/stdin
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def die_with_parent(parent: int) -> None:
    """Worker initializer: die when process ``parent`` dies; leave Ctrl-C to the parent.

    Example:
        >>> die_with_parent(parent_pid)  # first thing in a child process (or as initializer)
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    else:  # no parent-death signal: poll for it
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        workers, mp_context=_context(), initializer=die_with_parent, initargs=(os.getpid(),)
    )


def _close(pool: ProcessPoolExecutor, finished: bool) -> None:
    """Shut ``pool`` down: waiting for its workers to exit when its work ``finished``, else
    killing them now (their jobs are abandoned)."""
    if finished:
        pool.shutdown(wait=True)
        return
    # ProcessPoolExecutor has no public kill before Python 3.14 (terminate_workers)
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        p.kill()
    for p in processes:
        p.join(timeout=5)


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
        start = yield from _run_pool(fn, jobs, start, workers, lost)
        for k in lost:
            yield _run_alone(fn, jobs[k], crashed)


def _run_pool(
    fn: Callable[[J], R], jobs: Sequence[J], start: int, workers: int, lost: list[int]
) -> Generator[R, None, int]:
    """Yield results from ``start`` on; returns the first job not submitted. On a dead worker,
    ``lost`` gets the jobs that were in flight (they come just before the returned one)."""
    pool = _pool(workers)
    inflight: deque[tuple[int, Future[R]]] = deque()
    following = start
    finished = False
    try:
        while following < len(jobs) or inflight:
            try:
                while following < len(jobs) and len(inflight) < AHEAD * workers:
                    inflight.append((following, pool.submit(fn, jobs[following])))
                    following += 1
                result = inflight[0][1].result()
            except BrokenProcessPool:
                lost.extend(k for k, _ in inflight)
                return following
            inflight.popleft()
            yield result
        finished = True
        return following
    finally:  # not finished: a dead worker, an exception in the caller, or it stopped iterating
        _close(pool, finished)


def _run_alone(fn: Callable[[J], R], job: J, crashed: Callable[[J], R]) -> R:
    """``fn(job)`` in a process of its own; ``crashed(job)`` if that process dies."""
    solo = _pool(1)
    finished = False
    try:
        result = solo.submit(fn, job).result()
        finished = True
    except BrokenProcessPool:
        return crashed(job)
    finally:
        _close(solo, finished)
    return result
