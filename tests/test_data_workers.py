"""A worker process that dies (a decoder segfault) costs only its own file, and nothing hangs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
from conftest import tone, write_audio

from audioclr.data.workers import map_in_order


def square_or_die(job: int) -> int:
    """Dies on negative jobs, as a worker the OOM killer takes (SIGSEGV is tested below, in a
    child process, where pytest's fault handler cannot print the worker's stack)."""
    if job < 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return job * job


def test_results_in_job_order_and_a_dead_worker_costs_its_job_only() -> None:
    jobs = [1, 2, -3, 4, 5, 6, -7, 8, 9, 10, 11]
    results = list(map_in_order(square_or_die, jobs, workers=2, crashed=lambda job: ("dead", job)))
    assert results == [j * j if j > 0 else ("dead", j) for j in jobs]


# prepare in a child process (a hang fails the test by timeout instead of blocking the suite),
# with a decoder that segfaults on one file
CHILD = """
import os, signal, sys
from audioclr.data import prepare
decode = prepare.decode_audio
def decode_audio(path, sample_rate):
    if path.endswith("crash.wav"):
        os.kill(os.getpid(), signal.SIGSEGV)
    return decode(path, sample_rate)
prepare.decode_audio = decode_audio
summary = prepare.prepare_cache(sys.argv[1], sys.argv[2], workers=2, progress=False)
print(summary.added, summary.rejects)
"""


def test_prepare_rejects_the_file_that_crashes_its_decoder_and_keeps_the_rest(tmp_path) -> None:
    src = tmp_path / "src"
    for i in range(6):
        write_audio(src / f"t{i}.wav", tone(220 * (i + 1), 16000, 1.0), 16000)
    write_audio(src / "crash.wav", tone(330, 16000, 1.0), 16000)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(src), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    added, rejects = done.stdout.strip().split(" ", 1)
    assert added == "6"
    assert "crash.wav" in rejects and "decoder crashed" in rejects
    from audioclr.data.cache import ClipCache

    cache = ClipCache(tmp_path / "cache")
    assert len(cache) == 6
    assert all(np.abs(cache.read(i)).max() > 0.1 for i in range(6))
