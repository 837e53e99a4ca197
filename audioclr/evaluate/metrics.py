"""Probe metrics in numpy: accuracy, macro-F1 (single-label), macro ROC-AUC, PR-AUC (multi-label).

Definitions follow scikit-learn's (``roc_auc_score`` with tied scores given average ranks,
``average_precision_score`` as the step-wise sum ``sum_n (R_n - R_{n-1}) P_n``); classes
with only positives or only negatives have no AUC and are left out of the macro mean.

Example:
    >>> accuracy(np.array([0, 1, 1]), np.array([0, 1, 0]))
    0.6666666666666666
    >>> roc_auc_macro(np.array([[1, 0], [0, 1]]), np.array([[0.9, 0.2], [0.1, 0.8]]))
    1.0
"""

from __future__ import annotations

import numpy as np


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of ``(n,)`` predictions equal to the ``(n,)`` true class indices."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted mean F1 over the classes present in ``y_true`` or ``y_pred`` (``(n,)`` each)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    scores = []
    for c in np.union1d(y_true, y_pred):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        denom = 2 * tp + fp + fn
        scores.append(0.0 if denom == 0 else 2 * tp / denom)
    return float(np.mean(scores))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``(n,)`` values, ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_x)) + 1]
    ends = np.r_[starts[1:], len(x)]
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    return ranks


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Binary ROC-AUC of ``(n,)`` 0/1 labels and scores (Mann-Whitney U); NaN if one class."""
    y = np.asarray(y_true).astype(bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(score, dtype=np.float64))
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def average_precision(y_true: np.ndarray, score: np.ndarray) -> float:
    """Binary PR-AUC (average precision) of ``(n,)`` 0/1 labels and scores; NaN if no positive."""
    y = np.asarray(y_true).astype(bool)
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="mergesort")
    s, yy = np.asarray(score)[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct threshold
    tps = np.cumsum(yy)[last]
    fps = (last + 1) - tps
    precision = tps / (tps + fps)
    recall = tps / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _macro(fn, y_true: np.ndarray, scores: np.ndarray) -> float:
    vals = np.array([fn(y_true[:, c], scores[:, c]) for c in range(y_true.shape[1])])
    vals = vals[~np.isnan(vals)]
    return float(vals.mean()) if len(vals) else float("nan")


def roc_auc_macro(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Macro ROC-AUC of ``(n, classes)`` multi-hot labels and ``(n, classes)`` scores."""
    return _macro(roc_auc, np.asarray(y_true), np.asarray(scores))


def pr_auc_macro(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Macro PR-AUC (average precision) of ``(n, classes)`` multi-hot labels and scores."""
    return _macro(average_precision, np.asarray(y_true), np.asarray(scores))


def score_all(y_true: np.ndarray, scores: np.ndarray, multilabel: bool) -> dict[str, float]:
    """Every metric of a task: ``{accuracy, macro_f1}`` or ``{roc_auc, pr_auc}``.

    ``scores``: ``(n, classes)`` probabilities; ``y_true``: ``(n,)`` indices or
    ``(n, classes)`` multi-hot.
    """
    if multilabel:
        return {"roc_auc": roc_auc_macro(y_true, scores), "pr_auc": pr_auc_macro(y_true, scores)}
    pred = np.argmax(scores, axis=1)
    return {"accuracy": accuracy(y_true, pred), "macro_f1": macro_f1(y_true, pred)}


def primary_metric(multilabel: bool) -> str:
    """The metric a report ranks by: ``roc_auc`` (multi-label) or ``accuracy``."""
    return "roc_auc" if multilabel else "accuracy"
