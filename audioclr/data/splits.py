"""Deterministic stratified train/valid/test splits, seeded; fold names for cross-validation.

Single-label sets are stratified by class: each class is shuffled with its own draw from the
seeded generator, then cut by the fractions; with 3+ tracks every non-empty split gets one.
Multi-label sets (any track with several tags) use iterative stratification (Sechidis, Tsoumakas
and Vlahavas, 2011): the tag with the fewest tracks left is placed first, each of its tracks into
the split that most lacks that tag, so every tag, co-occurring ones too, is split in proportion.

A labelled set may instead name folds (``fold0``, ``fold1``, ...; ``fold1-test`` for a track
scored only when fold 1 is the test fold, e.g. the same presets rendered by another soundfont):
the probe then tests on every fold in turn (:mod:`audioclr.evaluate.folds`).

Example:
    >>> normalise_split("fold2-test", "labels.csv row 5")
    'fold2-test'
    >>> splits = stratified_split([["a"]] * 10 + [["b"]] * 10, seed=0, fractions=(0.6, 0.2, 0.2))
    >>> splits.count("valid")
    4
"""

from __future__ import annotations

import re

import numpy as np

from audioclr.errors import ConfigError, LabelError

SPLITS = ("train", "valid", "test")
ALIASES = {
    "train": "train",
    "training": "train",
    "valid": "valid",
    "val": "valid",
    "validation": "valid",
    "dev": "valid",
    "test": "test",
    "eval": "test",
    "evaluation": "test",
}


FOLD = re.compile(r"^fold0*(\d+)(-test)?$")
FOLD_HINT = f"use one of {SPLITS}, or fold names fold0, fold1, ... (foldK-test: test-only)"


def normalise_split(value: str, where: str) -> str:
    """``"val"`` -> ``"valid"``, ``"Fold03"`` -> ``"fold3"`` etc.; ``LabelError`` naming
    ``where`` for anything else."""
    key = value.strip().lower()
    split = ALIASES.get(key)
    if split is not None:
        return split
    match = FOLD.match(key)
    if match is None:
        raise LabelError(f"{where}: unknown split {value!r}", hint=FOLD_HINT)
    return f"fold{int(match.group(1))}{match.group(2) or ''}"


def parse_fold(split: str) -> tuple[int, bool] | None:
    """``"fold3"`` -> ``(3, False)``, ``"fold3-test"`` -> ``(3, True)``, a split name -> None."""
    match = FOLD.match(split)
    return None if match is None else (int(match.group(1)), match.group(2) is not None)


def check_split_kinds(splits: list[str], where: str) -> None:
    """A set names either train/valid/test splits or folds (at least 3 of them: test, valid and
    train come from different folds), and a test-only fold row needs its fold's tracks."""
    folds = [parse_fold(s) for s in splits]
    if all(f is None for f in folds):
        return
    if any(f is None for f in folds):
        row = [f is None for f in folds].index(True)
        raise LabelError(
            f"{where}: track {row + 1} has split {splits[row]!r} while others name folds",
            hint="name folds on every row, or train/valid/test on every row",
        )
    plain = {k for k, only in folds if not only}  # type: ignore[misc]
    if len(plain) < 3:
        raise LabelError(
            f"{where}: {len(plain)} fold(s) of trainable tracks; cross-validation needs 3 or more",
            hint="test, valid and train each take whole folds: name at least fold0..fold2",
        )
    orphan = sorted({k for k, only in folds if only and k not in plain})  # type: ignore[misc]
    if orphan:
        raise LabelError(
            f"{where}: test-only rows of fold(s) {orphan} but no trainable tracks in them",
            hint="every foldK-test needs rows of foldK",
        )


def _counts(n: int, fractions: tuple[float, float, float]) -> tuple[int, int]:
    """(valid, test) counts for a class of ``n`` tracks; the rest is train."""
    n_valid, n_test = round(n * fractions[1]), round(n * fractions[2])
    if n >= 3:
        n_valid = max(n_valid, 1 if fractions[1] > 0 else 0)
        n_test = max(n_test, 1 if fractions[2] > 0 else 0)
    while n_valid + n_test > n - (1 if fractions[0] > 0 and n > 0 else 0) and (n_valid or n_test):
        if n_valid >= n_test:
            n_valid -= 1
        else:
            n_test -= 1
    return n_valid, n_test


def stratified_split(
    labels: list[list[str]],
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    groups: list[str] | None = None,
) -> list[str]:
    """A split name per track, stratified by (rarest) label; same inputs and seed, same result.

    With ``groups`` (a group per track: the preset a clip was rendered from, the speaker of an
    utterance), whole groups are split: every track of a group lands in the same split, so no
    test track has a near-duplicate in training. Groups are stratified by their tracks' most
    common label (single-label) or by the union of their tags (multi-label).
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ConfigError(
            "config key 'fractions' must be three non-negative numbers summing to 1, "
            f"got {fractions}"
        )
    if groups is not None:
        return _by_group(labels, groups, seed, fractions)
    rng = np.random.default_rng(seed)
    if any(len(ls) > 1 for ls in labels):
        return _iterative(labels, fractions, rng)
    keys = [ls[0] if ls else "" for ls in labels]
    out = ["train"] * len(labels)
    for key in sorted(set(keys)):
        members = np.array([i for i, k in enumerate(keys) if k == key])
        members = members[rng.permutation(len(members))]
        n_valid, n_test = _counts(len(members), fractions)
        for i in members[:n_valid]:
            out[i] = "valid"
        for i in members[n_valid : n_valid + n_test]:
            out[i] = "test"
    return out


def _by_group(
    labels: list[list[str]],
    groups: list[str],
    seed: int,
    fractions: tuple[float, float, float],
) -> list[str]:
    """Split whole groups (each group one unit, labelled as its tracks), then give every track
    its group's split."""
    names = sorted(set(groups))
    members: dict[str, list[int]] = {g: [] for g in names}
    for i, g in enumerate(groups):
        members[g].append(i)
    multilabel = any(len(ls) > 1 for ls in labels)
    unit_labels = []
    for g in names:
        tags = [c for i in members[g] for c in labels[i]]
        if multilabel:
            unit_labels.append(sorted(set(tags)))
        else:  # the most common label, ties to the first in sorted order
            unit_labels.append([max(sorted(set(tags)), key=tags.count)] if tags else [])
    unit_splits = stratified_split(unit_labels, seed, fractions)
    out = ["train"] * len(labels)
    for g, split in zip(names, unit_splits, strict=True):
        for i in members[g]:
            out[i] = split
    return out


def _iterative(
    labels: list[list[str]], fractions: tuple[float, float, float], rng: np.random.Generator
) -> list[str]:
    """Iterative stratification: rarest remaining tag first, each of its tracks to the split
    with the largest unmet demand for that tag (ties: largest unmet demand overall, then random).
    Tags' shares come first: split sizes can miss theirs by a few percent of the set.
    """
    tags = sorted({c for ls in labels for c in ls})
    frac = np.asarray(fractions, dtype=np.float64)
    left = {c: [i for i, ls in enumerate(labels) if c in ls] for c in tags}
    want_tag = {c: frac * len(members) for c, members in left.items()}
    want = frac * len(labels)
    out: list[str | None] = [None] * len(labels)

    def place(i: int, scores: np.ndarray) -> None:
        best = np.flatnonzero(scores == scores.max())
        best = best[want[best] == want[best].max()]
        j = int(best[rng.integers(len(best))]) if len(best) > 1 else int(best[0])
        out[i] = SPLITS[j]
        want[j] -= 1
        for c in labels[i]:
            want_tag[c][j] -= 1

    while any(left.values()):
        sizes = {c: len(m) for c, m in left.items() if m}
        rarest = min(sizes.values())
        ties = [c for c, n in sizes.items() if n == rarest]
        tag = ties[rng.integers(len(ties))]
        for i in rng.permutation(left[tag]).tolist():
            if out[i] is None:
                place(i, want_tag[tag].copy())
        for c in tags:
            left[c] = [i for i in left[c] if out[i] is None]
    for i in rng.permutation(len(labels)).tolist():  # tracks without tags: by overall demand
        if out[i] is None:
            place(i, want.copy())
    return [s or "train" for s in out]
