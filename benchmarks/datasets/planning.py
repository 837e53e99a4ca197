"""Pure planning logic for the data-set builders: retrieval segments and group-preserving splits.

No audio and no packages here, so it is tested on its own.

Example:
    >>> plan_segments(65.0, segment_s=10.0, gap_s=2.0, max_segments=4)
    [(0.0, 10.0), (18.333, 10.0), (36.666, 10.0), (55.0, 10.0)]
    >>> split_groups({"p0": "piano", "p1": "piano", "p2": "piano"}, (0.34, 0.33, 0.33), seed=0)
    {'p0': 'valid', 'p1': 'test', 'p2': 'train'}
    >>> fold_groups({"p0": "piano", "p1": "piano", "p2": "organ"}, k=3, seed=0)
    {'p0': 2, 'p1': 1, 'p2': 1}
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict

import numpy as np

SPLITS = ("train", "valid", "test")


def plan_segments(
    duration_s: float,
    segment_s: float,
    gap_s: float = 0.0,
    max_segments: int = 6,
    margin_s: float = 0.0,
) -> list[tuple[float, float]]:
    """Non-overlapping ``(start_s, duration_s)`` segments spread evenly over a track.

    As many segments as fit (at most ``max_segments``) with at least ``gap_s`` between
    neighbours, inside ``[margin_s, duration_s - margin_s]``; the first starts at the margin and
    the last ends at the far margin. Starts are rounded down to milliseconds. Fewer than two
    segments (a track too short) gives ``[]``, since retrieval needs another segment to find.
    """
    if segment_s <= 0 or gap_s < 0 or max_segments < 1 or margin_s < 0:
        raise ValueError(
            f"bad segment plan: segment_s={segment_s}, gap_s={gap_s}, "
            f"max_segments={max_segments}, margin_s={margin_s}"
        )
    usable = duration_s - 2 * margin_s
    n = min(max_segments, int(math.floor((usable + gap_s) / (segment_s + gap_s) + 1e-9)))
    if n < 2:
        return []
    step = (usable - segment_s) / (n - 1)
    return [(math.floor((margin_s + i * step) * 1000) / 1000, segment_s) for i in range(n)]


def _split_counts(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    """How many of ``n`` groups go to train/valid/test; valid and test get >= 1 when n >= 3."""
    n_valid = round(n * fractions[1])
    n_test = round(n * fractions[2])
    if n >= 3:
        n_valid, n_test = max(1, n_valid), max(1, n_test)
    n_test = min(n_test, n)
    n_valid = min(n_valid, n - n_test)
    return n - n_valid - n_test, n_valid, n_test


def by_stratum(strata: dict[str, str]) -> list[tuple[str, list[str]]]:
    """``{group: stratum}`` -> ``[(stratum, sorted groups)]`` in stratum order."""
    out: dict[str, list[str]] = defaultdict(list)
    for group, stratum in strata.items():
        out[stratum].append(group)
    return [(stratum, sorted(out[stratum])) for stratum in sorted(out)]


def split_groups(
    strata: dict[str, str], fractions: tuple[float, float, float] = (0.6, 0.15, 0.25), seed: int = 0
) -> dict[str, str]:
    """Assign whole groups to ``train``/``valid``/``test``, stratified.

    ``strata`` maps a group (an instrument program, a speaker) to its stratum (its family, a
    gender); within each stratum the sorted groups are shuffled by a generator seeded with
    ``seed`` and the stratum name, then cut by ``fractions``. Every item of a group later
    inherits the group's split, so no test item has a twin in training. Deterministic, and a
    stratum's assignment does not depend on the other strata.
    """
    if (
        len(fractions) != 3
        or min(fractions) < 0
        or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6)
    ):
        raise ValueError(
            f"fractions must be three non-negative numbers summing to 1, got {fractions}"
        )
    out: dict[str, str] = {}
    for stratum, groups in by_stratum(strata):
        salt = zlib.crc32(stratum.encode())
        order = np.random.default_rng([seed, salt]).permutation(len(groups))
        n_train, n_valid, _ = _split_counts(len(groups), fractions)
        for rank, idx in enumerate(order):
            split = "train" if rank < n_train else "valid" if rank < n_train + n_valid else "test"
            out[groups[idx]] = split
    return dict(sorted(out.items()))


FOLDS = 4  # cross-validation folds of the instrument sets (2 of a GM family's 8 programs each)


def fold_groups(strata: dict[str, str], k: int = FOLDS, seed: int = 0) -> dict[str, int]:
    """Deal whole groups to ``k`` folds, stratified: within each stratum the sorted groups are
    shuffled (seeded by ``seed`` and the stratum name, as :func:`split_groups`) and dealt in
    turn from a seeded starting fold, so every fold gets ``n // k`` or ``n // k + 1`` groups of
    each stratum and a stratum's folds do not depend on the other strata. Deterministic."""
    if k < 3:
        raise ValueError(f"k must be >= 3 (test, valid and train folds), got {k}")
    out: dict[str, int] = {}
    for stratum, groups in by_stratum(strata):
        rng = np.random.default_rng([seed, zlib.crc32(stratum.encode()), k])
        order, start = rng.permutation(len(groups)), int(rng.integers(k))
        for rank, idx in enumerate(order):
            out[groups[idx]] = (start + rank) % k
    return dict(sorted(out.items()))
