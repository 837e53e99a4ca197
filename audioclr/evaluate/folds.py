"""Cross-validation over the folds a labelled set names: every fold is the test split once.

A labelled set whose split column names folds (``fold0`` ... ``foldK-1``; see
:func:`audioclr.data.splits.normalise_split`) is probed K times: fold ``i`` is the test split,
fold ``i + 1`` (mod K) the validation split (weight decay, early stopping), every other fold
trains. Rows named ``foldi-test`` are test-only: when fold ``i`` has them, they are its test
tracks in place of its own rows (e.g. the same presets rendered by another soundfont), and they
never train. A run's predictions on its K test folds are joined into one set of test tracks, so
every labelled track (or its test-only stand-in) is scored once per run, by a probe that never
saw it, and intervals resample K times more test tracks than one split would give.

Example:
    >>> folds = fold_ids(data.splits)            # [0, 1, 2, 3]
    >>> view = fold_view(data, 0, folds)         # splits: test = fold0, valid = fold1, ...
    >>> merged = merge_folds([once(fold_view(data, i, folds), ...) for i in range(4)], False)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from audioclr.data.splits import parse_fold
from audioclr.evaluate.intervals import TEST_SCORES, TrackScores
from audioclr.evaluate.metrics import score_all
from audioclr.evaluate.probe_data import ProbeData

UNUSED = ""  # a track a fold's probe neither trains, selects nor tests on


def fold_ids(splits: Sequence[str]) -> list[int]:
    """The sorted ids of the folds with trainable tracks; ``[]`` for train/valid/test splits."""
    parsed = [parse_fold(str(s)) for s in splits]
    return sorted({p[0] for p in parsed if p is not None and not p[1]})


def fold_splits(splits: Sequence[str], i: int, folds: Sequence[int]) -> np.ndarray:
    """Split names when ``folds[i]`` is tested: ``"test"``, ``"valid"``, ``"train"`` or unused."""
    test, valid = folds[i], folds[(i + 1) % len(folds)]
    parsed = [parse_fold(str(s)) for s in splits]
    stand_in = any(p == (test, True) for p in parsed)
    out = []
    for p in parsed:
        assert p is not None, "fold_splits needs fold names on every track"
        fold, only = p
        if fold == test:
            out.append("test" if only == stand_in else UNUSED)
        elif only:
            out.append(UNUSED)
        else:
            out.append("valid" if fold == valid else "train")
    return np.asarray(out)


def fold_view(data: ProbeData, i: int, folds: Sequence[int]) -> ProbeData:
    """``data`` with the splits of fold ``folds[i]`` tested (same rows, vectors shared)."""
    return replace(data, splits=fold_splits(data.splits, i, folds), corrupted={})


def merge_folds(results: Sequence[dict[str, Any]], multilabel: bool) -> dict[str, Any]:
    """One run's per-fold results -> one result: metrics of the joined test predictions, the
    joined ``TrackScores``, and each fold's choices (weight decay, iterations...) under
    ``"folds"``."""
    scores = [r[TEST_SCORES] for r in results]
    grouped = all(s.groups is not None for s in scores)
    joined = TrackScores(
        np.concatenate([s.tracks for s in scores]),
        np.concatenate([s.y_true for s in scores]),
        np.concatenate([s.scores for s in scores]),
        np.concatenate([s.groups for s in scores]) if grouped else None,  # type: ignore[misc]
    )
    metrics = score_all(joined.y_true, joined.scores, multilabel)
    per_fold = [
        {k: v for k, v in r.items() if k != TEST_SCORES and k not in metrics} for r in results
    ]
    for fold, r in zip(per_fold, results, strict=True):
        fold.update({f"fold_{k}": r[k] for k in metrics})
    return {
        **metrics,
        TEST_SCORES: joined,
        "train_rows": int(sum(r.get("train_rows", 0) for r in results)),
        "folds": per_fold,
    }
