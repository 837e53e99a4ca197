"""Build ``music_pool/``: unlabeled real music from Debian game soundtracks, and a retrieval set.

Every OGG file of ``supertux-data``, ``xmoto-data`` and ``frozen-bubble-data`` that lasts at
least ``MIN_TRACK_S`` seconds is music (shorter ones are sound effects); byte-identical files
are kept once. Output:

* ``music_pool/audio/pretrain/<package>/<path>.ogg``: the pretraining pool (``audioclr prepare
  music_pool/audio/pretrain ...``), copied unchanged.
* ``music_pool/audio/heldout/<package>/<path>.ogg``: whole tracks kept out of pretraining, a fixed
  seeded share of each package (``HELDOUT_SHARE``): retrieval is scored on these only, so it never
  measures the training objective on its own training data.
* ``music_pool/tracks.csv``: path, duration, source_package, split (pretrain | heldout).
* ``music_pool/segments.csv``: path, start_s, duration_s, track: non-overlapping segments of each
  held-out track; for a query segment the relevant answers are the other segments of its track.
* ``music_pool/segments/<track>/segNN.wav`` (mono, 22050 Hz) and ``segments_labels.csv``
  (path,label = track) so the same segments can be embedded like any labelled set.

Usage:
    python benchmarks/datasets/music_pool.py [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import soxr  # noqa: E402
from tqdm import tqdm  # noqa: E402

from benchmarks.datasets.common import (  # noqa: E402
    BuildError,
    data_root,
    fetch_package,
    rms_db,
    run_main,
    write_csv,
    write_wav,
)
from benchmarks.datasets.planning import plan_segments  # noqa: E402

PACKAGES = ("supertux-data", "xmoto-data", "frozen-bubble-data")
MIN_TRACK_S = 30.0
SEGMENT_S = 10.0
GAP_S = 5.0
MARGIN_S = 2.0
MAX_SEGMENTS = 6
SAMPLE_RATE = 22050
HELDOUT_SHARE = 0.25  # of each package's tracks, whole tracks, chosen by SPLIT_SEED
SPLIT_SEED = 0


def find_tracks(pkg_dir: Path) -> list[tuple[Path, float]]:
    """Sorted ``(path, seconds)`` of the OGG files in an unpacked package lasting >= MIN_TRACK_S."""
    out = []
    for path in sorted(pkg_dir.rglob("*.ogg")):
        try:
            seconds = sf.info(str(path)).duration
        except RuntimeError as e:
            print(f"  skipped unreadable {path.name}: {e}")
            continue
        if seconds >= MIN_TRACK_S:
            out.append((path, seconds))
    return out


def heldout_names(names: Sequence[str], share: float = HELDOUT_SHARE,
                  seed: int = SPLIT_SEED) -> set[str]:
    """A fixed seeded ``share`` of ``names`` (sorted first; at least one of two or more)."""
    names = sorted(names)
    n = round(share * len(names)) if len(names) > 1 else 0
    n = max(n, 1) if len(names) > 1 else 0
    rng = np.random.default_rng([seed, len(names)])
    return {names[i] for i in rng.permutation(len(names))[:n]}


def _copy_tracks(root: Path, out: Path) -> list[tuple[str, float, str, str]]:
    """Copy every kept track into ``out/audio/<split>``; rows (path, duration, package, split)."""
    rows, seen = [], set()
    for pkg in PACKAGES:
        pkg_dir = fetch_package(pkg, root)
        found = find_tracks(pkg_dir)
        if not found:
            raise BuildError(
                f"no OGG file >= {MIN_TRACK_S:.0f} s in {pkg}", hint=f"delete {pkg_dir} and rerun"
            )
        base = Path(os.path.commonpath([p.parent for p, _ in found]))
        unique = []
        for path, seconds in found:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in seen:
                print(f"  skipped duplicate {path.relative_to(pkg_dir)}")
                continue
            seen.add(digest)
            unique.append((path, seconds))
        held = heldout_names([p.relative_to(base).as_posix() for p, _ in unique])
        for path, seconds in unique:
            split = "heldout" if path.relative_to(base).as_posix() in held else "pretrain"
            rel = Path("audio") / split / pkg.removesuffix("-data") / path.relative_to(base)
            dest = out / rel
            if not dest.is_file() or dest.stat().st_size != path.stat().st_size:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest.with_name(dest.name + ".tmp"))
                dest.with_name(dest.name + ".tmp").replace(dest)
            rows.append((rel.as_posix(), round(seconds, 3), pkg, split))
    return rows


def track_id(rel: str) -> str:
    """Track id of a pool file: its path under ``audio/<split>/`` without the suffix
    (``xmoto/menu``)."""
    return str(Path(*Path(rel).parts[2:]).with_suffix("").as_posix())


def _cut_segments(
    out: Path, tracks: list[tuple[str, float, str, str]]
) -> list[tuple[str, float, float, str]]:
    """Plan segments of every held-out track and write them as WAVs; segments.csv rows."""
    rows = []
    held = [t for t in tracks if t[3] == "heldout"]
    for rel, seconds, *_ in tqdm(held, desc="segments", unit="track"):
        plan = plan_segments(seconds, SEGMENT_S, GAP_S, MAX_SEGMENTS, MARGIN_S)
        tid = track_id(rel)
        for k, (start, length) in enumerate(plan):
            seg = out / "segments" / tid / f"seg{k:02d}.wav"
            if not seg.is_file():
                info = sf.info(str(out / rel))
                first = int(start * info.samplerate)
                x, sr = sf.read(
                    str(out / rel),
                    start=first,
                    frames=int(length * info.samplerate),
                    dtype="float32",
                    always_2d=True,
                )
                write_wav(
                    seg,
                    soxr.resample(x.mean(axis=1), sr, SAMPLE_RATE).astype(np.float32),
                    SAMPLE_RATE,
                )
            rows.append((rel, start, length, tid))
    return rows


def build(root: Path) -> Path:
    """Build (or complete) ``root/music_pool``; returns the folder. Idempotent."""
    out = root / "music_pool"
    tracks = _copy_tracks(root, out)
    write_csv(out / "tracks.csv", ("path", "duration", "source_package", "split"), tracks)
    segments = _cut_segments(out, tracks)
    write_csv(out / "segments.csv", ("path", "start_s", "duration_s", "track"), segments)
    seg_rows = [(f"segments/{tid}/seg{k:02d}.wav", tid) for tid, k in _numbered(segments)]
    write_csv(out / "segments_labels.csv", ("path", "label"), seg_rows)
    quiet = [p for p, _ in seg_rows if rms_db(sf.read(str(out / p), dtype="float32")[0]) < -50]
    minutes = sum(t[1] for t in tracks) / 60
    print(f"\nmusic_pool/tracks.csv: {len(tracks)} tracks, {minutes:.1f} min in total")
    for pkg in PACKAGES:
        secs = [t[1] for t in tracks if t[2] == pkg]
        held = sum(1 for t in tracks if t[2] == pkg and t[3] == "heldout")
        print(
            f"  {pkg:<22}{len(secs):>4} tracks {sum(secs) / 60:>7.1f} min  "
            f"(shortest {min(secs):.0f} s, longest {max(secs):.0f} s; {held} held out)"
        )
    n_tracks = len({s[3] for s in segments})
    print(
        f"  segments.csv: {len(segments)} segments of {SEGMENT_S:.0f} s from {n_tracks} held-out "
        f"tracks (none from the pretraining pool); {len(quiet)} below -50 dBFS RMS"
    )
    return out


def _numbered(segments: list[tuple[str, float, float, str]]) -> list[tuple[str, int]]:
    """(track, k) for each segment row: its index within its track."""
    counts: dict[str, int] = {}
    out = []
    for *_, tid in segments:
        out.append((tid, counts.get(tid, 0)))
        counts[tid] = counts.get(tid, 0) + 1
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``--out DIR``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="cache folder (default $AUDIOCLR_DATA or ~/.cache/audioclr-data)")
    build(data_root(ap.parse_args(argv).out))


if __name__ == "__main__":
    sys.exit(run_main(main))
