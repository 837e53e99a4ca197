"""``prepare``: decode a folder of audio once into a clip cache, in parallel, resumably.

Worker processes decode, downmix, resample and quantize; the parent appends each result to the
current shard and, every couple of seconds, fsyncs the shard and renames a fresh manifest into
place. A kill at any moment leaves a cache that opens (the last manifest) and a rerun that only
processes files that are new or changed (size + mtime). Bad files are rejected with a reason.

Example:
    >>> summary = prepare_cache("my_music/", "cache/", sample_rate=22050, workers=2)
    >>> summary.added, summary.unchanged, summary.rejects[:1]
    (98, 0, [('/abs/my_music/bad.wav', 'corrupt or unsupported audio (...)')])
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from audioclr.atomic import atomic_write_text
from audioclr.config import require
from audioclr.data.decode import decode_audio
from audioclr.data.manifest import (
    DTYPES,
    REJECTS,
    TrackInfo,
    empty_manifest,
    quantize,
    read_manifest,
    tracks_of,
    write_manifest,
)
from audioclr.data.scan import absolute, scan_audio
from audioclr.data.shards import ShardWriter, cache_lock
from audioclr.data.workers import map_in_order
from audioclr.errors import AudioReadError, CacheError, SampleRateMismatch

SILENCE_PEAK = 1e-4  # -80 dBFS: below this everywhere, a track is "all silent"
CHECKPOINT_SECONDS = 2.0


@dataclass
class PrepareSummary:
    """What one ``prepare`` run did. ``rejects``: ``(source path, reason)`` per skipped file."""

    cache_dir: Path
    added: int = 0
    unchanged: int = 0
    removed: int = 0
    rejects: list[tuple[str, str]] = field(default_factory=list)
    audio_seconds: float = 0.0  # duration of the audio added this run
    wall_seconds: float = 0.0


def process_file(job: tuple[str, int, str, float]) -> tuple[str, Any]:
    """Worker: ``(path, sr, dtype, min_duration)`` -> ``("ok", q)`` | ``("reject", why)``."""
    path, sample_rate, dtype, min_duration = job
    try:
        x = decode_audio(path, sample_rate)
    except AudioReadError as exc:
        return "reject", str(exc).removeprefix(f"{path}: ")
    except MemoryError:
        return "reject", "too large to decode in memory"
    if x.size == 0:
        return "reject", "no audio frames (zero-length audio)"
    if not np.all(np.isfinite(x)):
        return "reject", "corrupt audio (NaN or Inf samples)"
    if x.size < min_duration * sample_rate:
        return (
            "reject",
            f"too short: {x.size / sample_rate:.3g} s < min_duration {min_duration:g} s",
        )
    if float(np.max(np.abs(x))) < SILENCE_PEAK:
        return "reject", "all silent (peak below -80 dBFS)"
    return "ok", quantize(x, dtype)


def _run_jobs(jobs: list[tuple[str, int, str, float]], workers: int) -> Iterator[tuple[str, Any]]:
    if workers <= 1 or len(jobs) <= 1:
        yield from map(process_file, jobs)
        return
    yield from map_in_order(process_file, jobs, min(workers, len(jobs)), crashed=_crashed)


def _crashed(job: tuple[str, int, str, float]) -> tuple[str, Any]:
    return "reject", "the decoder crashed on this file (its worker process died); check the file"


def _open_manifest(root: Path, sample_rate: int, dtype: str, min_duration: float) -> dict[str, Any]:
    if not (root / "manifest.json").exists():
        return empty_manifest(sample_rate, dtype, min_duration)
    manifest = read_manifest(root)
    if manifest["sample_rate"] != sample_rate:
        raise SampleRateMismatch(
            f"clip cache {root} holds audio at {manifest['sample_rate']} Hz, "
            f"but --sample-rate is {sample_rate}",
            hint=f"pass --sample-rate {manifest['sample_rate']} or prepare into a new cache folder",
        )
    if manifest["dtype"] != dtype:
        raise CacheError(
            f"clip cache {root} stores {manifest['dtype']}, but --dtype is {dtype}",
            hint=f"pass --dtype {manifest['dtype']} or prepare into a new cache folder",
        )
    return manifest


def _write_rejects(root: Path, rejects: list[tuple[str, str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "reason"])
    writer.writerows(rejects)
    atomic_write_text(root / REJECTS, buf.getvalue())


def _default_workers() -> int:
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )


def prepare_cache(
    src: str | Path,
    cache_dir: str | Path,
    sample_rate: int = 22050,
    dtype: str = "int16",
    workers: int | None = None,
    min_duration: float = 1.0,
    progress: bool = True,
    max_shard_bytes: int = 1 << 30,
) -> PrepareSummary:
    """Decode every audio file under ``src`` into the clip cache ``cache_dir`` (created or resumed).

    Raises ``SampleRateMismatch`` if an existing cache has another sample rate, ``CacheError`` if
    it is damaged, has another dtype or another prepare holds its lock.
    """
    require(sample_rate > 0, "sample_rate", sample_rate, "must be > 0")
    require(dtype in DTYPES, "dtype", dtype, f"must be one of {sorted(DTYPES)}")
    require(min_duration >= 0, "min_duration", min_duration, "must be >= 0")
    workers = _default_workers() if workers is None else workers
    require(workers >= 1, "workers", workers, "must be >= 1")
    t0 = time.perf_counter()
    src_root, root = absolute(src), absolute(cache_dir)
    scan = scan_audio(src_root)
    root.mkdir(parents=True, exist_ok=True)
    with cache_lock(root):
        manifest = _open_manifest(root, sample_rate, dtype, min_duration)
        summary = PrepareSummary(root)
        tracks, rejects, todo = _plan(manifest, root, src_root, scan.files, min_duration, summary)
        manifest.update(root=str(src_root), min_duration=min_duration)
        manifest["rejects"] = rejects
        write_manifest(
            root, manifest, tracks
        )  # the cache opens from here on, whatever happens next
        try:
            _ingest(
                root,
                manifest,
                tracks,
                rejects,
                todo,
                sample_rate,
                dtype,
                min_duration,
                workers,
                progress,
                max_shard_bytes,
                summary,
            )
        finally:
            summary.rejects = [(str(p), r) for p, r in scan.skipped]
            summary.rejects += [
                (r["source"], r["reason"]) for r in sorted(rejects, key=lambda r: r["track_id"])
            ]
            _write_rejects(root, summary.rejects)
    summary.wall_seconds = time.perf_counter() - t0
    return summary


def _plan(
    manifest: dict[str, Any],
    root: Path,
    src_root: Path,
    files: list[Path],
    min_duration: float,
    summary: PrepareSummary,
) -> tuple[list[TrackInfo], list[dict[str, Any]], list[tuple[str, Path, os.stat_result]]]:
    """Split the scanned files into unchanged tracks, known rejects and files to (re)process."""
    done = {t.track_id: t for t in tracks_of(manifest, root)}
    same_rule = manifest.get("min_duration") == min_duration
    old_rejects = {r["track_id"]: r for r in manifest.get("rejects", [])} if same_rule else {}
    tracks, rejects, todo = [], [], []
    seen = set()
    for path in files:
        tid = path.relative_to(src_root).as_posix()
        seen.add(tid)
        try:
            st = path.stat()
        except OSError as exc:
            rejects.append(
                {
                    "track_id": tid,
                    "source": str(path),
                    "size": -1,
                    "mtime_ns": -1,
                    "reason": f"unreadable ({exc.strerror})",
                }
            )
            continue
        old, rej = done.get(tid), old_rejects.get(tid)
        if old is not None and (old.size, old.mtime_ns) == (st.st_size, st.st_mtime_ns):
            tracks.append(old)
            summary.unchanged += 1
        elif rej is not None and (rej["size"], rej["mtime_ns"]) == (st.st_size, st.st_mtime_ns):
            rejects.append(rej)
        else:
            todo.append((tid, path, st))
    summary.removed = sum(1 for tid in done if tid not in seen)
    return tracks, rejects, todo


def _ingest(
    root: Path,
    manifest: dict[str, Any],
    tracks: list[TrackInfo],
    rejects: list[dict[str, Any]],
    todo: list[tuple[str, Path, os.stat_result]],
    sample_rate: int,
    dtype: str,
    min_duration: float,
    workers: int,
    progress: bool,
    max_shard_bytes: int,
    summary: PrepareSummary,
) -> None:
    """Decode ``todo`` in workers and append each result; checkpoint every few seconds."""
    jobs = [(str(path), sample_rate, dtype, min_duration) for _, path, _ in todo]
    writer = ShardWriter(root, dtype, max_shard_bytes)
    last = time.monotonic()
    bar = tqdm(total=len(jobs), unit="file", desc="prepare", disable=not progress)
    try:
        for (tid, path, st), (status, payload) in zip(todo, _run_jobs(jobs, workers), strict=True):
            if status == "ok":
                shard, offset = writer.append(payload)
                tracks.append(
                    TrackInfo(
                        tid, str(path), int(payload.size), shard, offset, st.st_size, st.st_mtime_ns
                    )
                )
                summary.added += 1
                summary.audio_seconds += payload.size / sample_rate
            else:
                rejects.append(
                    {
                        "track_id": tid,
                        "source": str(path),
                        "size": st.st_size,
                        "mtime_ns": st.st_mtime_ns,
                        "reason": payload,
                    }
                )
            bar.update(1)
            if time.monotonic() - last > CHECKPOINT_SECONDS:
                writer.sync()
                write_manifest(root, manifest, tracks)
                last = time.monotonic()
    finally:
        bar.close()
        writer.close()  # flush + fsync, then the manifest that points at the data
        write_manifest(root, manifest, tracks)
