"""Benchmark the data layer on the same files, in one run.

Prints: plain soundfile decode throughput (x realtime, one process), ``prepare`` throughput
(x realtime, default workers = all cores, including downmix + resample + quantize + write), their
ratio against decode summed over the cores (target >= 0.70), and random 3-second crop reads
per second from the cache (target >= 5,000).

Usage:
    .venv/bin/python benchmarks/prepare.py [--files 40] [--seconds 30] [--format ogg|flac]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from audioclr.data.cache import ClipCache, prepare_cache
from audioclr.data.prepare import _default_workers

SOURCE_SR = 44100
TARGET_SR = 22050


def make_files(folder: Path, n: int, seconds: float, fmt: str, rng: np.random.Generator) -> float:
    """Write ``n`` stereo 44.1 kHz music-like files; returns their total duration in seconds."""
    t = np.arange(int(seconds * SOURCE_SR)) / SOURCE_SR
    for i in range(n):
        freqs = rng.uniform(100, 2000, 6)
        x = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in freqs) / 8
        x = x * (
            0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t)
        ) + 0.01 * rng.standard_normal(len(t))
        stereo = np.stack([x, np.roll(x, 100)], axis=1).astype(np.float32)
        sf.write(str(folder / f"track{i:03d}.{fmt}"), stereo, SOURCE_SR)
    return n * seconds


def plain_decode(files: list[Path]) -> float:
    """Seconds to decode every file with soundfile in this process (no resampling)."""
    t0 = time.perf_counter()
    for f in files:
        sf.read(str(f), dtype="float32")
    return time.perf_counter() - t0


def _decode_one(path: str) -> None:
    sf.read(path, dtype="float32")


def parallel_decode(files: list[Path], workers: int) -> float:
    """Seconds to decode every file with soundfile in ``workers`` processes (sum over the cores)."""
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        t0 = time.perf_counter()
        pool.map(_decode_one, [str(f) for f in files], chunksize=1)
        return time.perf_counter() - t0


def crop_reads(cache: ClipCache, n: int, rng: np.random.Generator) -> float:
    """Random 3-second crops per second (random track, random start)."""
    crop = 3 * cache.sample_rate
    tracks = rng.integers(0, len(cache), n)
    starts = rng.random(n)
    t0 = time.perf_counter()
    for i, u in zip(tracks, starts, strict=True):
        start = int(u * (cache.tracks[i].num_samples - crop))
        cache.read(int(i), start, crop)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--format", choices=["ogg", "flac"], default="ogg")
    ap.add_argument("--crops", type=int, default=20000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    workers = _default_workers()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        audio_s = make_files(src, args.files, args.seconds, args.format, rng)
        files = sorted(src.iterdir())
        plain_decode(files[:2])  # warm the page cache and the codec
        decode_x = audio_s / plain_decode(files)
        par_x = audio_s / parallel_decode(files, workers)
        summary = prepare_cache(
            src, Path(tmp) / "cache", sample_rate=TARGET_SR, workers=workers, progress=False
        )
        prepare_x = summary.audio_seconds / summary.wall_seconds
        crops = crop_reads(ClipCache(Path(tmp) / "cache"), args.crops, rng)
    ratio = prepare_x / (decode_x * workers)
    ratio_par = prepare_x / par_x
    print(
        f"files: {args.files} x {args.seconds:g} s stereo {SOURCE_SR} Hz {args.format} "
        f"-> mono {TARGET_SR} Hz int16"
    )
    print(f"plain soundfile decode, 1 process:   {decode_x:8.1f} x realtime")
    print(f"plain soundfile decode, {workers} processes: {par_x:8.1f} x realtime  (measured)")
    print(f"prepare, {workers} workers:               {prepare_x:8.1f} x realtime")
    print(f"prepare / (1-process decode x {workers}):   {ratio:8.2f}   (target >= 0.70)")
    print(
        f"prepare / {workers}-process decode:         {ratio_par:8.2f}   (same target, same load)"
    )
    print(f"random 3 s crop reads:             {crops:8.0f} /s  (target >= 5000)")


if __name__ == "__main__":
    main()
