"""Bootstrap intervals over test tracks and runs (seeds x init draws), and paired verdicts.

One replicate ``b`` of the bootstrap resamples the ``n`` test tracks with replacement (as
integer weights ``w[b]``: how often each track was drawn), the seeds with replacement and each
method's init draws with replacement; it scores every resampled run on the resampled tracks and
averages. The 2.5 and 97.5 percentiles of the ``B`` averages are the 95 % interval. A paired
difference (encoder - baseline) uses the same resampled tracks and the same resampled seeds
(a seed indexes the same label subset for both methods) and each method's draws independently;
the verdict is "beats" if the interval's lower bound is > 0, "loses" if its upper bound is < 0,
else "tie". When the test tracks carry groups (``TrackScores.groups``: the program an instrument
clip was rendered from, the speaker of a digit; a labels CSV's ``group`` column), the bootstrap
resamples whole groups instead (a cluster bootstrap): clips of one preset or voice are not
independent evidence, so the interval covers drawing other presets or voices.

A resampled metric is the metric of :mod:`audioclr.evaluate.metrics` on the resampled tracks,
computed from weights without copying arrays. AUC metrics: a class with only positives or only
negatives among the resampled tracks has no AUC and is left out of the macro mean (as in
``metrics``); a replicate where no class has an AUC is NaN and is dropped from the percentiles
(``nanpercentile``); if every replicate is NaN the interval is ``(nan, nan)`` and the verdict
"tie".

Example:
    >>> rng = np.random.default_rng(0)
    >>> idx = rng.integers(0, 3, size=(1000, 3))                     # (B, n) resampled tracks
    >>> acc = resampled_metric("accuracy", y, scores, track_counts(idx, 3))   # (B,)
    >>> lo, hi = percentile_interval(acc)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

TEST_SCORES = "_test"  # key of a run's TrackScores; "_" keys never reach report.json
VERDICTS = ("beats", "tie", "loses")


@dataclass(frozen=True, eq=False)
class TrackScores:
    """One run's test predictions: ``tracks`` ``(n,)`` indices, ``y_true`` ``(n,)`` class indices
    or ``(n, classes)`` multi-hot, ``scores`` ``(n, classes)`` probabilities; ``groups``
    ``(n,)`` the tracks' groups (resampled whole by the bootstrap) or None (tracks resampled)."""

    tracks: np.ndarray
    y_true: np.ndarray
    scores: np.ndarray
    groups: np.ndarray | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TrackScores):
            return NotImplemented
        return all(
            np.array_equal(a, b)
            for a, b in zip(
                (self.tracks, self.y_true, self.scores),
                (other.tracks, other.y_true, other.scores),
                strict=True,
            )
        )

    __hash__ = None  # type: ignore[assignment]


def track_counts(track_idx: np.ndarray, n: int) -> np.ndarray:
    """``(B, n)`` resampled track indices -> ``(B, n)`` counts (how often each track was drawn)."""
    b = track_idx.shape[0]
    flat = (track_idx + n * np.arange(b)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def weighted_accuracy(y_true: np.ndarray, scores: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Accuracy of argmax ``(n, classes)`` scores vs ``(n,)`` labels under ``(B, n)`` weights."""
    correct = (np.argmax(scores, axis=1) == y_true).astype(np.float64)
    return (w @ correct) / w.sum(axis=1)


def weighted_macro_f1(y_true: np.ndarray, scores: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Macro-F1 over the classes present (in truth or prediction) under ``(B, n)`` weights."""
    pred = np.argmax(scores, axis=1)
    total, present = np.zeros(w.shape[0]), np.zeros(w.shape[0])
    for c in np.union1d(y_true, pred):
        t, p = y_true == c, pred == c
        tp, fp, fn = w @ (t & p), w @ (p & ~t), w @ (t & ~p)
        here = (tp + fp + fn) > 0
        total += np.where(here, 2 * tp / np.maximum(2 * tp + fp + fn, 1e-300), 0.0)
        present += here
    return total / present


def _groups(sorted_scores: np.ndarray) -> np.ndarray:
    """Start index of each run of equal values in a sorted ``(n,)`` array."""
    return np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]


def weighted_roc_auc(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Binary ROC-AUC (ties count 1/2) of ``(n,)`` 0/1 labels and scores, ``(B, n)`` weights.

    ``U = sum_(pos i, neg j) w_i w_j ([s_i > s_j] + [s_i = s_j] / 2) / (W_pos W_neg)``; NaN where
    the weighted tracks hold only one class.
    """
    order = np.argsort(s, kind="mergesort")
    yy, ws = np.asarray(y)[order].astype(bool), w[:, order]
    starts = _groups(np.asarray(s)[order])
    pos = np.add.reduceat(ws * yy, starts, axis=1)  # (B, groups)
    neg = np.add.reduceat(ws * ~yy, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    u = (pos * (below + 0.5 * neg)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def weighted_average_precision(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Binary average precision ``sum_t (R_t - R_(t-1)) P_t`` over distinct thresholds under
    ``(B, n)`` weights; NaN where the weighted tracks hold no positive."""
    order = np.argsort(-np.asarray(s, dtype=np.float64), kind="mergesort")
    yy, ws = np.asarray(y)[order].astype(bool), w[:, order]
    starts = _groups(np.asarray(s)[order])
    tp = np.add.reduceat(ws * yy, starts, axis=1)  # (B, groups)
    fp = np.add.reduceat(ws * ~yy, starts, axis=1)
    ctp, cfp = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
    precision = ctp / np.maximum(ctp + cfp, 1e-300)  # 0/0 only where the increment is 0
    n_pos = tp.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (tp * precision).sum(axis=1) / n_pos
    return np.where(n_pos > 0, ap, np.nan)


def _weighted_macro(
    fn: Callable[..., np.ndarray], y: np.ndarray, s: np.ndarray, w: np.ndarray
) -> np.ndarray:
    per_class = np.stack([fn(y[:, c], s[:, c], w) for c in range(y.shape[1])], axis=1)
    finite = np.isfinite(per_class)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(finite, per_class, 0.0).sum(axis=1) / finite.sum(axis=1)
    return np.where(finite.any(axis=1), out, np.nan)


METRICS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "accuracy": weighted_accuracy,
    "macro_f1": weighted_macro_f1,
    "roc_auc": lambda y, s, w: _weighted_macro(weighted_roc_auc, y, s, w),
    "pr_auc": lambda y, s, w: _weighted_macro(weighted_average_precision, y, s, w),
}


def resampled_metric(
    metric: str, y_true: np.ndarray, scores: np.ndarray, w: np.ndarray
) -> np.ndarray:
    """``metric`` of ``(n, classes)`` scores on ``(B, n)`` track weights -> ``(B,)`` values."""
    if metric not in METRICS:
        raise ValueError(f"no bootstrap for metric {metric!r}; choose from {list(METRICS)}")
    return METRICS[metric](np.asarray(y_true), np.asarray(scores), w)


def run_grid(
    runs: Sequence[TrackScores],
    seed_pos: Sequence[int],
    draw_pos: Sequence[int],
    metric: str,
    w: np.ndarray,
) -> np.ndarray:
    """``(B, seeds, draws)`` metric of every run (at its seed/draw position) under weights ``w``."""
    first = runs[0].tracks
    if any(not np.array_equal(r.tracks, first) for r in runs):
        raise ValueError("runs were scored on different test tracks; intervals need the same ones")
    grid = np.full((w.shape[0], max(seed_pos) + 1, max(draw_pos) + 1), np.nan)
    for r, s, d in zip(runs, seed_pos, draw_pos, strict=True):
        grid[:, s, d] = resampled_metric(metric, r.y_true, r.scores, w)
    return grid


def resampled_mean(grid: np.ndarray, seed_idx: np.ndarray, draw_idx: np.ndarray) -> np.ndarray:
    """Mean over resampled seeds ``(B, S)`` x resampled draws ``(B, D)`` of a ``(B, S', D')`` grid
    -> ``(B,)`` (NaN entries ignored; NaN where all are)."""
    b = np.arange(grid.shape[0])[:, None, None]
    picked = grid[b, seed_idx[:, :, None], draw_idx[:, None, :]].reshape(grid.shape[0], -1)
    finite = np.isfinite(picked)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(finite, picked, 0.0).sum(axis=1) / finite.sum(axis=1)
    return np.where(finite.any(axis=1), out, np.nan)


def percentile_interval(dist: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` percentile interval of a ``(B,)`` distribution (NaNs dropped)."""
    finite = dist[np.isfinite(dist)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = 50 * (1 - level)
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return float(lo), float(hi)


def verdict(lo: float, hi: float) -> str:
    """``beats`` if ``lo > 0``, ``loses`` if ``hi < 0``, else ``tie`` (also for a NaN interval)."""
    if lo > 0:
        return "beats"
    if hi < 0:
        return "loses"
    return "tie"


def _layout(runs: Sequence[dict[str, Any]]) -> tuple[list[Any], list[int], list[int], int]:
    """Seed values, each run's seed position and draw position, and the number of draws."""
    seeds = list(dict.fromkeys(r["seed"] for r in runs))
    seed_pos = [seeds.index(r["seed"]) for r in runs]
    draw_pos = [int(r.get("draw", 0)) for r in runs]
    return seeds, seed_pos, draw_pos, max(draw_pos) + 1


def resampled_tracks(scores: TrackScores, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(B, n)`` bootstrap weights of a run's test tracks: whole groups when it has groups
    (:func:`cluster_weights`), else tracks drawn with replacement."""
    if scores.groups is not None:
        return cluster_weights(scores.groups, n_boot, rng)
    n = len(scores.tracks)
    return track_counts(rng.integers(0, n, size=(n_boot, n)), n)


def cell_interval(
    runs: Sequence[dict[str, Any]],
    metric: str,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> list[float]:
    """``[lo, hi]`` of the mean ``metric`` of one cell's runs (run dicts of ``run_probe``)."""
    seeds, seed_pos, draw_pos, n_draws = _layout(runs)
    scores = [r[TEST_SCORES] for r in runs]
    rng = np.random.default_rng(seed)
    w = resampled_tracks(scores[0], n_boot, rng)
    seed_idx = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))
    draw_idx = rng.integers(0, n_draws, size=(n_boot, n_draws))
    grid = run_grid(scores, seed_pos, draw_pos, metric, w)
    return list(percentile_interval(resampled_mean(grid, seed_idx, draw_idx), level))


def paired_difference(
    runs_a: Sequence[dict[str, Any]],
    runs_b: Sequence[dict[str, Any]],
    metric: str,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """``{"diff", "ci95", "verdict"}`` of mean ``metric`` of runs ``a`` minus runs ``b``.

    Both are resampled on the same test tracks; if both ran the same seeds, on the same
    resampled seeds too (else each on its own); each method's draws independently.
    """
    lay_a, lay_b = _layout(runs_a), _layout(runs_b)
    sc_a, sc_b = [r[TEST_SCORES] for r in runs_a], [r[TEST_SCORES] for r in runs_b]
    if not np.array_equal(sc_a[0].tracks, sc_b[0].tracks):
        raise ValueError("the two methods were scored on different test tracks; cannot pair them")
    rng = np.random.default_rng(seed)
    w = resampled_tracks(sc_a[0], n_boot, rng)
    seed_a = rng.integers(0, len(lay_a[0]), size=(n_boot, len(lay_a[0])))
    draw_a = rng.integers(0, lay_a[3], size=(n_boot, lay_a[3]))
    draw_b = rng.integers(0, lay_b[3], size=(n_boot, lay_b[3]))
    same_seeds = lay_a[0] == lay_b[0]
    seed_b = seed_a if same_seeds else rng.integers(0, len(lay_b[0]), (n_boot, len(lay_b[0])))
    dist_a = resampled_mean(run_grid(sc_a, lay_a[1], lay_a[2], metric, w), seed_a, draw_a)
    dist_b = resampled_mean(run_grid(sc_b, lay_b[1], lay_b[2], metric, w), seed_b, draw_b)
    lo, hi = percentile_interval(dist_a - dist_b, level)
    diff = np.nanmean([r[metric] for r in runs_a]) - np.nanmean([r[metric] for r in runs_b])
    return {"diff": float(diff), "ci95": [lo, hi], "verdict": verdict(lo, hi)}


def cluster_weights(clusters: Sequence[Any], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(B, queries)`` weights of a cluster bootstrap: whole clusters (the tracks a query's
    segments come from) drawn with replacement; a query's weight = how often its cluster was."""
    _, inv = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    n = int(inv.max()) + 1
    counts = track_counts(rng.integers(0, n, size=(n_boot, n)), n)  # (B, clusters)
    return counts[:, inv]


def draw_means(values: np.ndarray, w: np.ndarray, draw_idx: np.ndarray) -> np.ndarray:
    """Weighted query means of ``values (draws, queries)`` under ``w (B, queries)``, averaged
    over resampled draws ``draw_idx (B, draws)`` -> ``(B,)``."""
    per_draw = (values @ w.T) / np.maximum(w.sum(axis=1), 1)  # (draws, B)
    return per_draw[draw_idx, np.arange(w.shape[0])[:, None]].mean(axis=1)


def query_intervals(
    per_method: dict[str, np.ndarray],
    clusters: Sequence[Any],
    encoder: str,
    baselines: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Intervals of a per-query score (e.g. precision@k) for every method, and the paired
    difference of ``encoder`` minus the best of ``baselines``.

    ``per_method[m]``: ``(draws, queries)``, the same queries in the same order for every
    method. Every method is resampled on the same clusters (paired); draws on their own.
    Returns ``{"ci95": {method: [lo, hi]}, "vs_best_baseline": {...} | None}``.
    """
    rng = np.random.default_rng(seed)
    w = cluster_weights(clusters, n_boot, rng)
    dists = {
        m: draw_means(v, w, rng.integers(0, len(v), size=(n_boot, len(v))))
        for m, v in per_method.items()
    }
    out: dict[str, Any] = {
        "ci95": {m: list(percentile_interval(d, level)) for m, d in dists.items()},
        "vs_best_baseline": None,
    }
    present = [b for b in baselines if b in per_method]
    if encoder in per_method and present:
        best = max(present, key=lambda m: float(per_method[m].mean()))
        lo, hi = percentile_interval(dists[encoder] - dists[best], level)
        diff = float(per_method[encoder].mean() - per_method[best].mean())
        out["vs_best_baseline"] = {
            "baseline": best,
            "diff": diff,
            "ci95": [lo, hi],
            "verdict": verdict(lo, hi),
        }
    return out
