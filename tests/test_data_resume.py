"""A SIGKILL in the middle of prepare leaves a cache that opens; the rerun does only the rest."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
from conftest import tone, write_audio

from audioclr.data.cache import ClipCache, prepare_cache
from audioclr.data.decode import decode_audio

N_FILES = 30

# A prepare in a child process, slowed per file to be killed part way; checkpoints often.
CHILD = """
import sys, time
from audioclr.data import prepare
slow = prepare.process_file
def process_file(job):
    time.sleep(0.05)
    return slow(job)
prepare.process_file = process_file
prepare.CHECKPOINT_SECONDS = 0.0
prepare.prepare_cache(sys.argv[1], sys.argv[2], workers=1, progress=False)
"""


def _tracks_in_manifest(path) -> int:
    try:
        return len(json.loads(path.read_text())["tracks"])
    except (OSError, ValueError):
        return 0


def test_kill_mid_prepare_then_resume(tmp_path) -> None:
    src, cache_dir = tmp_path / "src", tmp_path / "cache"
    for i in range(N_FILES):
        write_audio(src / f"t{i:02d}.flac", tone(200 + 20 * i, 44100, 1.2), 44100)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(src), str(cache_dir)])
    deadline = time.monotonic() + 60
    while _tracks_in_manifest(cache_dir / "manifest.json") < 5 and time.monotonic() < deadline:
        assert child.poll() is None, "prepare finished before it could be killed"
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()

    partial = ClipCache(cache_dir)  # opens after the kill
    done = len(partial)
    assert 5 <= done < N_FILES
    for t in partial.tracks:  # what the manifest lists is complete and correct
        np.testing.assert_allclose(
            partial.read(partial.index_of(t.track_id)),
            decode_audio(src / t.track_id, 22050),
            atol=1e-4,
        )

    s = prepare_cache(src, cache_dir, workers=2, progress=False)
    assert (s.unchanged, s.added, s.rejects) == (done, N_FILES - done, [])
    cache = ClipCache(cache_dir)
    assert sorted(t.track_id for t in cache.tracks) == [f"t{i:02d}.flac" for i in range(N_FILES)]
    for t in cache.tracks:
        np.testing.assert_allclose(
            cache.read(cache.index_of(t.track_id)), decode_audio(src / t.track_id, 22050), atol=1e-4
        )
