"""Fault matrix of ``prepare``, for real: SIGKILLed runs, held locks, non-UTF-8 names, permission
changes as a non-root user, truncated and over-loud files, and cache paths that cannot be one."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import tone, write_audio

from audioclr.data.cache import ClipCache, prepare_cache
from audioclr.data.decode import decode_audio
from audioclr.data.manifest import dequantize, quantize
from audioclr.errors import CacheError

N_FILES = 40
NOBODY = 65534

# The real `audioclr prepare` with 2 workers, each file slowed to be killed part way, with a
# manifest checkpoint every second (so a kill leaves appended bytes no manifest names).
SLOW_PREPARE = """
import sys, time
from audioclr.cli import main
from audioclr.data import prepare
fast = prepare.process_file
def process_file(job):
    time.sleep(0.1)
    return fast(job)
prepare.process_file = process_file
prepare.CHECKPOINT_SECONDS = 1.0
sys.exit(main(["prepare", sys.argv[1], sys.argv[2], "--workers", "2", "--no-progress"]))
"""

HOLD_LOCK = """
import sys, time
from pathlib import Path
from audioclr.data.shards import cache_lock
with cache_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def _cli(*args: str, user: int | None = None) -> subprocess.CompletedProcess:
    """``audioclr ARGS`` in a fresh process (as root: as ``user`` via setpriv), stdout strict
    UTF-8."""
    prefix = []
    if user is not None and os.geteuid() == 0:
        prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
    env = dict(os.environ, PYTHONIOENCODING="utf-8:strict", LC_ALL="C.UTF-8")
    return subprocess.run(
        [*prefix, sys.executable, "-m", "audioclr.cli", *args],
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=120,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )


def _group(pgid: int) -> list[str]:
    """Command lines of the live (non-zombie) processes in process group ``pgid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(f"{entry.name}: {cmd[:80]}")
    return found


def _manifest_tracks(cache_dir: Path) -> int:
    try:
        return len(json.loads((cache_dir / "manifest.json").read_text())["tracks"])
    except (OSError, ValueError, KeyError):
        return 0


def _assert_cache_equals_sources(cache: ClipCache, src: Path) -> None:
    for i, t in enumerate(cache.tracks):
        np.testing.assert_allclose(cache.read(i), decode_audio(src / t.track_id, 22050), atol=1e-4)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkilled_prepare_leaves_no_process_and_the_rerun_resumes_at_once(tmp_path) -> None:
    src, cache_dir = tmp_path / "src", tmp_path / "cache"
    for i in range(N_FILES):
        write_audio(src / f"t{i:02d}.wav", tone(200 + 20 * i, 44100, 1.2), 44100)
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_PREPARE, str(src), str(cache_dir)],
        start_new_session=True,  # its own process group: every process it starts is in it
    )
    deadline = time.monotonic() + 90
    while _manifest_tracks(cache_dir) < 5 and time.monotonic() < deadline:
        assert child.poll() is None, "prepare finished before it could be killed"
        time.sleep(0.01)
    time.sleep(0.5)  # half a checkpoint interval: files appended that no manifest names yet
    try:
        running = _group(child.pid)
        assert len(running) >= 3, running  # the prepare and its two workers
        child.send_signal(signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + 10
        while _group(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _group(child.pid) == [], "processes outlived the killed prepare"
    finally:  # whatever happened, leave none of this test's processes behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)

    done = len(ClipCache(cache_dir))
    assert 5 <= done < N_FILES
    shard = cache_dir / "shard-00000.i16"
    dead = shard.stat().st_size - 2 * sum(t.num_samples for t in ClipCache(cache_dir).tracks)
    s = prepare_cache(src, cache_dir, workers=2, progress=False)  # no lock left behind
    assert (s.unchanged, s.added, s.rejects) == (done, N_FILES - done, [])
    assert s.reclaimed_bytes == dead
    cache = ClipCache(cache_dir)
    assert [t.track_id for t in cache.tracks] == [f"t{i:02d}.wav" for i in range(N_FILES)]
    assert shard.stat().st_size == 2 * sum(t.num_samples for t in cache.tracks)  # no dead bytes
    _assert_cache_equals_sources(cache, src)


def test_a_held_lock_names_its_holder_and_a_dead_holder_blocks_nothing(tmp_path) -> None:
    src, cache_dir = tmp_path / "src", tmp_path / "cache"
    write_audio(src / "a.wav", tone(440, 22050, 1.5), 22050)
    cache_dir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(cache_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(CacheError, match=f"pid {holder.pid}"):
            prepare_cache(src, cache_dir, workers=1, progress=False)
    finally:
        holder.kill()
        holder.wait()
    assert prepare_cache(src, cache_dir, workers=1, progress=False).added == 1


def test_non_utf8_file_names_are_prepared_listed_and_shown_escaped(tmp_path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    x = tone(440, 22050, 1.5)
    good, bad = os.fsencode(src) + b"/good_\xff.wav", os.fsencode(src) + b"/junk_\xfe.wav"
    sf.write(good, x, 22050)
    with open(bad, "wb") as fh:
        fh.write(b"RIFF" + bytes(range(256)) * 8)
    done = _cli("prepare", str(src), str(tmp_path / "cache"), "--workers", "2", "--no-progress")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "junk_\\xfe.wav (corrupt)" in done.stdout  # escaped: printable in any locale
    again = prepare_cache(src, tmp_path / "cache", workers=2, progress=False)  # reads them back
    assert (again.unchanged, [os.fsencode(r.path) for r in again.rejects]) == (1, [bad])
    cache = ClipCache(tmp_path / "cache")
    assert [os.fsencode(t.track_id) for t in cache.tracks] == [b"good_\xff.wav"]
    np.testing.assert_allclose(cache.read(0), x, atol=1e-4)
    listed = (tmp_path / "cache" / "rejects.csv").read_bytes().splitlines()
    assert listed[1].startswith(bad + b",corrupt,")  # the OS's bytes, usable as a path


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder another user can reach (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="audioclr-faults-"))
    path.chmod(0o777)
    yield path
    for p in [path, *path.rglob("*")]:  # as root, make everything removable again
        if not p.is_symlink():
            p.chmod(0o777)
    shutil.rmtree(path)


def _as_nobody_possible() -> bool:
    if os.geteuid() != 0:
        return True
    return shutil.which("setpriv") is not None


@pytest.mark.skipif(not _as_nobody_possible(), reason="root without setpriv reads every file")
def test_permission_denied_file_and_folder_are_listed_then_retried(shared_tmp) -> None:
    """As a non-root user: a file and a folder that cannot be read are rejected as permission
    denied (the folder too, not skipped silently), and retried once readable."""
    user = NOBODY
    src, cache_dir = shared_tmp / "src", shared_tmp / "cache"
    write_audio(src / "ok.wav", tone(440, 22050, 1.5), 22050)
    locked = write_audio(src / "locked.wav", tone(330, 22050, 1.5), 22050)
    write_audio(src / "closed" / "inside.wav", tone(550, 22050, 1.5), 22050)
    for p in [src, *src.rglob("*")]:
        p.chmod(0o777)
    locked.chmod(0)
    (src / "closed").chmod(0)
    args = ("prepare", str(src), str(cache_dir), "--workers", "2", "--no-progress")
    done = _cli(*args, user=user)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "1 added" in done.stdout and "2 rejected" in done.stdout
    assert f"rejected {locked} (permission): permission denied" in done.stdout
    assert f"rejected {src / 'closed'} (permission): folder not scanned" in done.stdout
    rows = (cache_dir / "rejects.csv").read_text().splitlines()[1:]
    assert sorted(rows) == [
        f"{src / 'closed'},permission,folder not scanned: permission denied",
        f"{locked},permission,permission denied",
    ]

    locked.chmod(0o644)
    (src / "closed").chmod(0o755)
    done = _cli(*args, user=user)
    assert done.returncode == 0, done.stderr
    assert "2 added" in done.stdout and "1 unchanged" in done.stdout and "0 rejected" in done.stdout
    ids = [t.track_id for t in ClipCache(cache_dir).tracks]
    assert ids == ["closed/inside.wav", "locked.wav", "ok.wav"]


def test_truncated_wav_is_rejected_and_a_float_wav_at_1e6_is_scaled_not_clipped(tmp_path) -> None:
    src = tmp_path / "src"
    full = write_audio(src / "full.wav", tone(440, 22050, 3.0), 22050)
    (src / "cut.wav").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    loud = tone(330, 22050, 1.5) * np.float32(2e6)  # peak 1e6
    write_audio(src / "loud.wav", loud, 22050, subtype="FLOAT")
    s = prepare_cache(src, tmp_path / "cache", workers=2, progress=False)
    assert [(os.path.basename(r.path), r.kind) for r in s.rejects] == [("cut.wav", "truncated")]
    assert "header promises" in s.rejects[0].reason
    assert [(os.path.basename(p), round(peak)) for p, peak in s.scaled] == [
        ("loud.wav", round(float(np.abs(loud).max())))
    ]
    cache = ClipCache(tmp_path / "cache")
    stored = cache.read(cache.index_of("loud.wav"))
    expected = dequantize(quantize(loud / np.abs(loud).max(), "int16"))
    np.testing.assert_array_equal(stored, expected)  # a sine at peak 1, not a square wave
    assert np.mean(np.abs(stored) > 0.99) < 0.5  # clipped: nearly all samples at +-1


def test_cache_paths_that_cannot_be_a_cache_give_one_line(shared_tmp) -> None:
    """Each a real ``audioclr prepare``: exit 2, ``error: ...`` and ``hint: ...``, no traceback."""
    src = shared_tmp / "src"
    write_audio(src / "a.wav", tone(440, 22050, 1.5), 22050)
    src.chmod(0o755)
    (shared_tmp / "a_file").write_text("x")
    readonly = shared_tmp / "readonly"
    readonly.mkdir(mode=0o555)
    cases = [
        (shared_tmp / "a_file", None, "is a file, not a folder"),
        (Path("/proc/audioclr-cache"), None, "cannot write the cache folder /proc/audioclr-cache"),
    ]
    if _as_nobody_possible():
        cases.append((readonly / "cache", NOBODY, "Permission denied"))
    for cache, user, message in cases:
        done = _cli("prepare", str(src), str(cache), "--no-progress", user=user)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert message in lines[0] and lines[0].startswith("error:") and len(lines) == 2
