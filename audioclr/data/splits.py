"""Deterministic stratified train/valid/test splits, seeded.

Single-label sets are stratified by class; multi-label sets by each track's rarest tag (a common
approximation to iterative stratification). Each class is shuffled with its own draw from the
seeded generator, then cut by the fractions; with 3+ tracks every non-empty split gets one.

Example:
    >>> splits = stratified_split([["a"]] * 10 + [["b"]] * 10, seed=0, fractions=(0.6, 0.2, 0.2))
    >>> splits.count("valid")
    4
"""

from __future__ import annotations

from collections import Counter

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


def normalise_split(value: str, where: str) -> str:
    """``"val"`` -> ``"valid"`` etc.; ``LabelError`` naming ``where`` for anything else."""
    split = ALIASES.get(value.strip().lower())
    if split is None:
        raise LabelError(f"{where}: unknown split {value!r}", hint=f"use one of {SPLITS}")
    return split


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
) -> list[str]:
    """A split name per track, stratified by (rarest) label; same inputs and seed, same result."""
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ConfigError(
            "config key 'fractions' must be three non-negative numbers summing to 1, "
            f"got {fractions}"
        )
    freq = Counter(c for ls in labels for c in ls)
    keys = [min(ls, key=lambda c: (freq[c], c)) if ls else "" for ls in labels]
    rng = np.random.default_rng(seed)
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
