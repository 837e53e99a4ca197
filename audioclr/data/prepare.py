"""``prepare``: decode a folder of audio once into a clip cache, in parallel, resumably.

Worker processes decode, downmix, resample and quantize; the parent appends each result to the
current shard and, every couple of seconds, fsyncs the shard and renames a fresh manifest into
place. A kill at any moment leaves a cache that opens (the last manifest), workers that die
with the parent, and a rerun that cuts off the bytes the killed run wrote past that manifest
and only processes files that are new or changed (size + mtime). Bad files are rejected with
the kind of failure and a reason; transient ones (permission, I/O) are retried by the next run.
A float file peaking above full scale is scaled down to peak 1, never clipped (and reported).
``shard=(i, n)`` prepares only the files of shard ``i`` of ``n`` (``scan.in_shard``).

Example:
    >>> summary = prepare_cache("my_music/", "cache/", sample_rate=22050, workers=2)
    >>> summary.added, summary.unchanged, summary.rejects[:1]
    (98, 0, [Reject('/abs/my_music/bad.wav', 'corrupt', 'corrupt or unsupported audio (...)')])
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from audioclr.config import require
from audioclr.data.decode import DecodeError, decode_audio
from audioclr.data.manifest import (
    DTYPES,
    TRANSIENT,
    Reject,
    TrackInfo,
    empty_manifest,
    quantize,
    read_manifest,
    tracks_of,
    write_manifest,
    write_rejects,
)
from audioclr.data.scan import (
    ScanResult,
    absolute,
    in_shard,
    os_error_kind,
    scan_audio,
    shown,
)
from audioclr.data.shards import ShardWriter, cache_lock
from audioclr.data.workers import map_in_order
from audioclr.errors import CacheError, SampleRateMismatch

SILENCE_PEAK = 1e-4  # -80 dBFS: below this everywhere, a track is "all silent"
CHECKPOINT_SECONDS = 2.0

Job = tuple[str, int, str, float]  # (path, sample_rate, dtype, min_duration)
# ("ok", samples, peak above full scale or None) | ("reject", (kind, reason), None)
Result = tuple[str, Any, float | None]


@dataclass
class PrepareSummary:
    """What one ``prepare`` run did. ``rejects``: a ``Reject`` per file or folder left out;
    ``scaled``: ``(path, peak)`` per file that peaked above full scale and was scaled down."""

    cache_dir: Path
    added: int = 0
    unchanged: int = 0
    removed: int = 0
    rejects: list[Reject] = field(default_factory=list)
    scaled: list[tuple[str, float]] = field(default_factory=list)
    reclaimed_bytes: int = 0  # bytes a killed run left past the last manifest, cut off
    audio_seconds: float = 0.0  # duration of the audio added this run
    wall_seconds: float = 0.0


@dataclass
class _Settings:
    sample_rate: int
    dtype: str
    min_duration: float
    workers: int
    progress: bool
    max_shard_bytes: int


def process_file(job: Job) -> Result:
    """Worker: ``(path, sr, dtype, min_duration)`` -> ``("ok", samples, peak | None)`` or
    ``("reject", (kind, reason), None)``."""
    path, sample_rate, dtype, min_duration = job
    try:
        x = decode_audio(path, sample_rate)
    except DecodeError as exc:
        return "reject", (exc.kind, exc.reason), None
    except MemoryError:
        return "reject", ("too_large", "too large to decode in memory"), None
    if x.size == 0:
        return "reject", ("empty", "no audio frames (zero-length audio)"), None
    if not np.all(np.isfinite(x)):
        return "reject", ("corrupt", "corrupt audio (NaN or Inf samples)"), None
    if x.size < min_duration * sample_rate:
        why = f"too short: {x.size / sample_rate:.3g} s < min_duration {min_duration:g} s"
        return "reject", ("too_short", why), None
    peak = float(np.max(np.abs(x)))
    if peak < SILENCE_PEAK:
        return "reject", ("silent", "all silent (peak below -80 dBFS)"), None
    if peak > 1.0:  # float audio above full scale: scaled to peak 1, never clipped
        return "ok", quantize(x * np.float32(1.0 / peak), dtype), peak
    return "ok", quantize(x, dtype), None


def _run_jobs(jobs: list[Job], workers: int) -> Iterator[Result]:
    if workers <= 1 or len(jobs) <= 1:
        yield from map(process_file, jobs)
        return
    yield from map_in_order(process_file, jobs, min(workers, len(jobs)), crashed=_crashed)


def _crashed(job: Job) -> Result:
    why = "the decoder crashed on this file (its worker process died); check the file"
    return "reject", ("crashed", why), None


def _open_manifest(root: Path, s: _Settings, shard: tuple[int, int] | None) -> dict[str, Any]:
    if not (root / "manifest.json").exists():
        return dict(
            empty_manifest(s.sample_rate, s.dtype, s.min_duration),
            shard=list(shard) if shard else None,
        )
    manifest = read_manifest(root)
    if manifest["sample_rate"] != s.sample_rate:
        raise SampleRateMismatch(
            f"clip cache {root} holds audio at {manifest['sample_rate']} Hz, "
            f"but --sample-rate is {s.sample_rate}",
            hint=f"pass --sample-rate {manifest['sample_rate']} or prepare into a new cache folder",
        )
    if manifest["dtype"] != s.dtype:
        raise CacheError(
            f"clip cache {root} stores {manifest['dtype']}, but --dtype is {s.dtype}",
            hint=f"pass --dtype {manifest['dtype']} or prepare into a new cache folder",
        )
    held = manifest.get("shard")
    if (list(held) if held else None) != (list(shard) if shard else None):
        have = f"shard {held[0]}/{held[1]}" if held else "every file (no --shard)"
        want = f"--shard {shard[0]}/{shard[1]}" if shard else "no --shard"
        raise CacheError(
            f"clip cache {root} holds {have} of its source, but this run has {want}",
            hint="pass the same --shard as before, or prepare into a new cache folder",
        )
    return manifest


def _default_workers() -> int:
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )


def _make_cache_dir(root: Path) -> None:
    """Create ``root``; ``CacheError`` in one line when the path cannot be a cache folder."""
    if root.exists() and not root.is_dir():
        raise CacheError(
            f"cache path {shown(root)} is a file, not a folder",
            hint="pass a new folder or an existing clip cache",
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise CacheError(
            f"cannot write the cache folder {shown(root)}: {exc.strerror or exc}",
            hint="pass a folder you can write to",
        ) from exc


def prepare_cache(
    src: str | Path,
    cache_dir: str | Path,
    sample_rate: int = 22050,
    dtype: str = "int16",
    workers: int | None = None,
    min_duration: float = 1.0,
    progress: bool = True,
    max_shard_bytes: int = 1 << 30,
    shard: tuple[int, int] | None = None,
) -> PrepareSummary:
    """Decode every audio file under ``src`` (or, with ``shard=(i, n)``, those of shard ``i``
    of ``n``) into the clip cache ``cache_dir`` (created or resumed).

    Raises ``SampleRateMismatch`` if an existing cache has another sample rate, ``CacheError``
    if the cache path cannot be written, or the cache is damaged, has another dtype or shard,
    or another prepare holds its lock.
    """
    require(sample_rate > 0, "sample_rate", sample_rate, "must be > 0")
    require(dtype in DTYPES, "dtype", dtype, f"must be one of {sorted(DTYPES)}")
    require(min_duration >= 0, "min_duration", min_duration, "must be >= 0")
    workers = _default_workers() if workers is None else workers
    require(workers >= 1, "workers", workers, "must be >= 1")
    if shard is not None:
        require(0 <= shard[0] < shard[1], "shard", shard, "must be (i, n) with 0 <= i < n")
    settings = _Settings(sample_rate, dtype, min_duration, workers, progress, max_shard_bytes)
    t0 = time.perf_counter()
    src_root, root = absolute(src), absolute(cache_dir)
    scan = _scan(src_root, shard)
    _make_cache_dir(root)
    summary = PrepareSummary(root)
    try:
        with cache_lock(root):
            manifest = _open_manifest(root, settings, shard)
            previous = tracks_of(manifest, root)
            tracks, rejects, todo = _plan(
                manifest, previous, src_root, scan.files, settings, summary
            )
            manifest.update(root=str(src_root), min_duration=min_duration, rejects=rejects)
            write_manifest(root, manifest, tracks)  # the cache opens from here on, whatever next
            try:
                _ingest(root, manifest, previous, tracks, rejects, todo, settings, summary)
            finally:
                ordered = sorted(rejects, key=lambda r: r["track_id"])
                summary.rejects = scan.skipped + [
                    Reject(r["source"], r["kind"], r["reason"]) for r in ordered
                ]
                write_rejects(root, summary.rejects)
    except OSError as exc:  # writing the cache failed (disk full, permissions changed ...)
        raise CacheError(
            f"cannot write the clip cache {shown(root)}: {exc.strerror or exc}"
            + (f" ({shown(exc.filename)})" if exc.filename else ""),
            hint="check the free space and the folder's permissions, then rerun to resume",
        ) from exc
    summary.wall_seconds = time.perf_counter() - t0
    return summary


def _scan(src_root: Path, shard: tuple[int, int] | None) -> ScanResult:
    """The audio under ``src_root``, or the files of ``shard`` (folders that cannot be listed
    are reported by every shard: their files may be anyone's)."""
    scan = scan_audio(src_root)
    if shard is None:
        return scan

    def mine(path: str | Path) -> bool:
        return in_shard(Path(path).relative_to(src_root).as_posix(), shard)

    scan.files = [p for p in scan.files if mine(p)]
    scan.skipped = [r for r in scan.skipped if r.kind != "unsupported" or mine(r.path)]
    return scan


def _plan(
    manifest: dict[str, Any],
    done_tracks: list[TrackInfo],
    src_root: Path,
    files: list[Path],
    settings: _Settings,
    summary: PrepareSummary,
) -> tuple[list[TrackInfo], list[dict[str, Any]], list[tuple[str, Path, os.stat_result]]]:
    """Split the scanned files into unchanged tracks, known rejects and files to (re)process.

    A known reject is kept only if the file is unchanged and its kind is not transient."""
    done = {t.track_id: t for t in done_tracks}
    same_rule = manifest.get("min_duration") == settings.min_duration
    old_rejects = {r["track_id"]: r for r in manifest.get("rejects", [])} if same_rule else {}
    tracks, rejects, todo = [], [], []
    seen = set()
    for path in files:
        tid = path.relative_to(src_root).as_posix()
        seen.add(tid)
        try:
            st = path.stat()
        except OSError as exc:
            kind, why = os_error_kind(exc)
            rejects.append(_reject_entry(tid, path, None, kind, why))
            continue
        old, rej = done.get(tid), old_rejects.get(tid)
        if old is not None and (old.size, old.mtime_ns) == (st.st_size, st.st_mtime_ns):
            tracks.append(old)
            summary.unchanged += 1
        elif rej is not None and _still_rejected(rej, st):
            rejects.append(rej)
        else:
            todo.append((tid, path, st))
    summary.removed = sum(1 for tid in done if tid not in seen)
    return tracks, rejects, todo


def _still_rejected(rej: dict[str, Any], st: os.stat_result) -> bool:
    """A past reject stands if the file is unchanged and its failure was not transient (an
    entry from before kinds were recorded is retried once)."""
    kind = rej.get("kind")
    unchanged = (rej["size"], rej["mtime_ns"]) == (st.st_size, st.st_mtime_ns)
    return unchanged and kind is not None and kind not in TRANSIENT


def _reject_entry(
    tid: str, path: Path, st: os.stat_result | None, kind: str, reason: str
) -> dict[str, Any]:
    """A manifest reject (size and mtime -1 when the file could not even be stat'ed)."""
    return {
        "track_id": tid,
        "source": str(path),
        "size": st.st_size if st else -1,
        "mtime_ns": st.st_mtime_ns if st else -1,
        "kind": kind,
        "reason": reason,
    }


def _ingest(
    root: Path,
    manifest: dict[str, Any],
    previous: list[TrackInfo],
    tracks: list[TrackInfo],
    rejects: list[dict[str, Any]],
    todo: list[tuple[str, Path, os.stat_result]],
    s: _Settings,
    summary: PrepareSummary,
) -> None:
    """Decode ``todo`` in workers and append each result; checkpoint every few seconds."""
    jobs = [(str(path), s.sample_rate, s.dtype, s.min_duration) for _, path, _ in todo]
    writer = ShardWriter(root, s.dtype, s.max_shard_bytes, live=previous)
    summary.reclaimed_bytes = writer.reclaimed
    last = time.monotonic()
    bar = tqdm(total=len(jobs), unit="file", desc="prepare", disable=not s.progress)
    try:
        for (tid, path, st), (status, payload, peak) in zip(
            todo, _run_jobs(jobs, s.workers), strict=True
        ):
            if status == "ok":
                shard, offset = writer.append(payload)
                tracks.append(
                    TrackInfo(
                        tid, str(path), int(payload.size), shard, offset, st.st_size, st.st_mtime_ns
                    )
                )
                summary.added += 1
                summary.audio_seconds += payload.size / s.sample_rate
                if peak is not None:
                    summary.scaled.append((str(path), peak))
            else:
                rejects.append(_reject_entry(tid, path, st, *payload))
            bar.update(1)
            if time.monotonic() - last > CHECKPOINT_SECONDS:
                writer.sync()
                write_manifest(root, manifest, tracks)
                last = time.monotonic()
    finally:
        bar.close()
        writer.close()  # flush + fsync, then the manifest that points at the data
        write_manifest(root, manifest, tracks)
