"""Write ``music_pool/pretrain_tracks.csv``: the release of every pretraining track of the pool.

The release of a track is the Debian package it came from (``source_package`` of
``music_pool/tracks.csv``: one game's soundtrack), the same label ``segments_release_labels.csv``
gives the held-out segments (checked here). Only the pretraining split is written, so the file
matches the pool's clip cache exactly: ``audioclr metadata CACHE music_pool/pretrain_tracks.csv``
(or ``metadata:`` in a benchmark config), then pretrain with ``data.positives=group:release``.

Usage:
    python benchmarks/datasets/pool_metadata.py [--out DIR]
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.datasets import common  # noqa: E402

OUT_NAME = "pretrain_tracks.csv"


def build(root: Path) -> Path:
    """Write ``root/music_pool/pretrain_tracks.csv`` (path,release); returns its path."""
    pool = root / "music_pool"
    tracks = common.read_csv(pool / "tracks.csv")
    release = {r["path"]: r["source_package"] for r in tracks}
    by_track = {r["track"]: r["path"] for r in common.read_csv(pool / "segments.csv")}
    labels = common.read_csv(pool / "segments_release_labels.csv")
    segments = common.read_csv(pool / "segments_labels.csv")
    for seg, rel in zip(segments, labels, strict=True):
        if release[by_track[seg["label"]]] != rel["label"]:
            raise common.BuildError(
                f"{pool}: segment {seg['path']} is labelled release {rel['label']}, but its track "
                f"comes from {release[by_track[seg['label']]]}",
                hint="rebuild the pool: python benchmarks/datasets/music_pool.py",
            )
    rows = sorted((r["path"], r["source_package"]) for r in tracks if r["split"] == "pretrain")
    path = common.write_csv(pool / OUT_NAME, ("path", "release"), rows)
    sizes = Counter(rel for _, rel in rows)
    alone = sum(1 for n in sizes.values() if n == 1)
    print(
        f"{path}: {len(rows)} pretraining tracks of {len(sizes)} releases "
        f"({alone} release(s) with a single track); largest {sizes.most_common(1)[0]}"
    )
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``--out DIR``."""
    build(common.parse_args(__doc__, argv).root)


if __name__ == "__main__":
    sys.exit(common.run_main(main))
