"""Build the real-recording data sets (music_pool, instruments, instruments_freepats, digits,
speech_pool), then check them.

Each builder is idempotent, so a rerun only completes what is missing. Prints counts per class
and split, total durations, the sanity checks and the wall time of each step.

Usage:
    python benchmarks/datasets/build_all.py [--out DIR] [--soundfont-b timgm6mb|musescore]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.datasets import (  # noqa: E402
    check,
    digits,
    freepats,
    instruments,
    music_pool,
    pool_metadata,
    speech_pool,
)
from benchmarks.datasets.common import parse_args, run_main  # noqa: E402


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``--out DIR --soundfont-b KEY --seed N``."""
    args = parse_args(__doc__, argv, seed=True, soundfonts=instruments.SOUNDFONTS_B)
    root = args.root
    print(f"building into {root}", flush=True)
    steps = [
        ("music_pool", lambda: music_pool.build(root)),
        ("pool_metadata", lambda: pool_metadata.build(root)),
        ("instruments", lambda: instruments.build(root, args.soundfont_b, args.seed)),
        ("instruments_freepats", lambda: freepats.build(root, args.seed)),
        ("digits", lambda: digits.build(root, args.seed)),
        ("speech_pool", lambda: speech_pool.build(root, args.seed)),
    ]
    start = time.perf_counter()
    for name, step in steps:
        t0 = time.perf_counter()
        step()
        print(f"[{name}] done in {time.perf_counter() - t0:.1f} s\n", flush=True)
    reports = check.check_all(root)
    print(f"\nall data sets built in {time.perf_counter() - start:.1f} s under {root}")
    check.require_clean(reports)


if __name__ == "__main__":
    sys.exit(run_main(main))
