"""Probes on frozen embeddings: linear (or one-hidden-layer MLP) heads in torch, and cosine kNN.

Features are standardised with statistics of the training rows. The linear head is logistic
regression (softmax; sigmoid per class for multi-label) fitted on the whole training set by
L-BFGS to convergence, as scikit-learn's would be; the MLP head trains with Adam and stops early
on the validation split (validation metric, ties broken by validation loss). Weight decay (an L2
penalty ``wd * ||W||^2`` on the weights) is chosen on the validation split from a grid. Scores
are computed on the test split at track level (window probabilities averaged per track). Each
label fraction is run for several seeds (and, for a method with random weights, several init
draws: one ``ProbeData`` per draw) and reported as mean, std and a bootstrap 95 % interval
(:mod:`audioclr.evaluate.intervals`).

Why L-BFGS for the linear head: with Adam and early stopping on a small validation split, the
epoch picked is noisy and some features under-fit (on the real-recording suite, random-init
embeddings scored 0.44 where scikit-learn's logistic regression scored 0.60); to convergence,
every method gets the optimum of the same regularised problem.

Example:
    >>> data = align(load_embeddings("emb/"), load_labelled_set("labels.csv"))
    >>> res = run_probe(data, ProbeConfig(head="linear"), fractions=[0.1, 1.0], seeds=[0, 1, 2])
    >>> res["1.0"]["accuracy"]
    {'mean': 0.91, 'std': 0.01, 'values': [0.9, 0.92, 0.91], 'ci95': [0.87, 0.94]}
    >>> res["1.0"]["runs"][0]["draw"], res["1.0"]["warnings"]
    (0, [])
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from audioclr.evaluate.distributed import gather, rank_and_world
from audioclr.evaluate.finetune import finetune_once
from audioclr.evaluate.folds import fold_ids, fold_view, merge_folds
from audioclr.evaluate.intervals import TEST_SCORES, TrackScores, cell_interval, paired_difference
from audioclr.evaluate.metrics import primary_metric, score_all
from audioclr.evaluate.probe_config import ProbeConfig, is_finetune
from audioclr.evaluate.probe_data import (
    ProbeData,
    ProbeWarning,
    check_classes,
    check_draws,
    missing_in_train,
    sample_fraction,
)
from audioclr.evaluate.probe_fit import Split, fit_linear, fit_mlp, knn_scores, predict_tracks


def probe_once(
    data: ProbeData, train_tracks: np.ndarray, cfg: ProbeConfig, seed: int
) -> dict[str, Any]:
    """Fit on ``train_tracks``, select on the valid split, score on test: metrics plus choices.

    The result also holds, under :data:`TEST_SCORES`, the test tracks' indices ``(n,)``, true
    labels ``(n,)`` or ``(n, classes)`` and predicted ``(n, classes)`` scores (for intervals).
    """
    stats = train_tracks if cfg.standardize == "labelled" else data.split_indices("train")
    rows = data.rows_of(stats)
    mean, std = data.x[rows].mean(axis=0), data.x[rows].std(axis=0) + 1e-6
    train = Split(data, train_tracks, mean, std)
    valid_tracks = data.split_indices("valid")
    valid = Split(data, valid_tracks if len(valid_tracks) else train_tracks, mean, std)
    test = Split(data, data.split_indices("test"), mean, std)
    n_classes = len(data.classes)
    if cfg.head == "knn":
        extra: dict[str, Any] = {"k": cfg.k}

        def predict(split: Split) -> np.ndarray:
            return knn_scores(train, split, n_classes, data.multilabel, cfg.k)
    else:
        fit = fit_linear if cfg.head == "linear" else fit_mlp
        fits = [
            (fit(train, valid, n_classes, data.multilabel, wd, cfg, seed), wd)
            for wd in cfg.weight_decays
        ]
        (model, _, steps), wd = max(fits, key=lambda f: f[0][1])
        steps_key = "iterations" if cfg.head == "linear" else "epochs"
        extra = {"weight_decay": wd, steps_key: steps}

        def predict(split: Split) -> np.ndarray:
            return predict_tracks(model, split, data.multilabel, torch.device(cfg.device))

    def scored(split: Split) -> dict[str, Any]:
        probs = predict(split)
        groups = None if data.groups is None else data.groups[split.tracks]
        arrays = TrackScores(split.tracks, split.y_tracks, probs, groups)
        return {**score_all(split.y_tracks, probs, data.multilabel), TEST_SCORES: arrays}

    corrupted = {
        name: scored(Split(alt, test.tracks, mean, std)) for name, alt in data.corrupted.items()
    }
    return {
        **scored(test),
        **extra,
        "train_rows": len(train.rows),
        **({"corrupted": corrupted} if corrupted else {}),
    }


def _summary(values: list[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std()), "values": [float(v) for v in arr]}


NO_VALID = (
    "no validation tracks: weight decay{mlp} is chosen on the training rows, which favours "
    "the weakest penalty; give the labelled set a 'valid' split"
)


def _warn(message: str, sink: list[str]) -> None:
    """Record ``message`` for the report and warn (Python shows an identical warning once)."""
    sink.append(message)
    warnings.warn(message, ProbeWarning, stacklevel=3)


NO_VALID_FINETUNE = (
    "no validation tracks: fine-tuning trains probe.finetune_epochs with the first of "
    "probe.finetune_lrs (no early stopping, no learning-rate choice); give the labelled set a "
    "'valid' split"
)


def _set_up_warnings(data: ProbeData, cfg: ProbeConfig) -> list[str]:
    if cfg.head == "knn" or len(data.split_indices("valid")):
        return []
    if is_finetune(cfg.head):
        return [NO_VALID_FINETUNE]
    return [NO_VALID.format(mlp=" (and the MLP's stopping epoch)" if cfg.head == "mlp" else "")]


DETERMINISTIC_HEADS = ("linear", "knn")


def seeds_for(fraction: float, cfg: ProbeConfig, seeds: Sequence[int]) -> list[int]:
    """The seeds a label fraction runs: all of them, except the first alone at fraction 1 for a
    linear or kNN head. Fraction 1 draws no subset, kNN has no randomness and the linear head is
    convex (L-BFGS to convergence reaches its one optimum from any start), so other seeds would
    refit the same problem; subsets, MLP and fine-tuning heads get every seed.

    Example:
        >>> linear = ProbeConfig(head="linear")
        >>> seeds_for(1.0, linear, [0, 1, 2]), seeds_for(0.1, linear, [0, 1])
        ([0], [0, 1])
    """
    if float(fraction) == 1 and cfg.head in DETERMINISTIC_HEADS:
        return list(seeds[:1])
    return list(seeds)


def _fit_shared(
    jobs: list[tuple[float, int, int, int]],
    fit: Callable[[float, int, int, int], dict[str, Any]],
    desc: str,
) -> dict[tuple[float, int, int, int], dict[str, Any]]:
    """``{job: fit(*job)}`` with every job fitted once: under ``torchrun`` rank r fits jobs
    r, r + world, ... and every rank gets all results (:mod:`audioclr.evaluate.distributed`);
    a plain process fits them all. Each rank's bar counts its own share."""
    rank, world = rank_and_world()
    mine = {job: fit(*job) for job in tqdm(jobs[rank::world], desc=desc, unit="fit")}
    if world == 1:
        return mine
    return {job: res for part in gather(mine) for job, res in part.items()}


def run_probe(
    data: ProbeData | Sequence[ProbeData],
    cfg: ProbeConfig,
    fractions: Sequence[float] = (1.0,),
    seeds: Sequence[int] = (0,),
) -> dict[str, dict[str, Any]]:
    """Every fraction x seed x draw: ``{fraction: {metric: {mean, std, values, ci95}, "runs":
    [...], "warnings": [...]}}``.

    ``data`` is one embedding of the labelled set, or a sequence of embeddings of the same
    tracks from independent init draws of a method (e.g. random-init with 3 seeds): every
    (seed, draw) pair is one run, tagged ``"seed"`` and ``"draw"``. The label subset of a
    fraction depends on the seed only, so every draw trains on the same tracks. Fraction 1 with
    a linear or kNN head runs the first seed only (:func:`seeds_for`). The primary
    metric carries ``ci95``: the bootstrap interval of its mean over test tracks and runs
    (:func:`audioclr.evaluate.intervals.cell_interval`, ``cfg.bootstrap`` replicates).

    A labelled set that names folds is cross-validated (:mod:`audioclr.evaluate.folds`): each
    run fits one probe per fold (fold i tested, fold i + 1 selecting) and is scored on the
    joined test folds; ``train_tracks`` is then the mean over folds and each fold's choices
    are under the run's ``"folds"``.

    Raises ``LabelError`` for a labelled set with one class; warns (and lists under
    ``warnings``) when a test class has no training track or there is no validation split.
    """
    draws = [data] if isinstance(data, ProbeData) else list(data)
    once = finetune_once if is_finetune(cfg.head) else probe_once
    check_draws(draws)
    first = draws[0]
    folds = fold_ids(first.splits)
    # one entry per fold (a single one without folds): each draw's view with that fold tested
    views = [[fold_view(d, i, folds) for d in draws] for i in range(len(folds))] or [draws]
    for fold in views:
        check_classes(fold[0])
    # plan every fit first (label subsets depend on the seed only), then fit this rank's share
    chosen_by: dict[tuple[float, int], list[np.ndarray]] = {}
    missing_by: dict[float, dict[str, list[int]]] = {}
    for fraction in fractions:
        missing_by[fraction] = {}
        for seed in seeds_for(fraction, cfg, seeds):
            chosen = []
            for fold in views:
                train_all = fold[0].split_indices("train")
                picked = sample_fraction(first.targets, train_all, fraction, seed, first.multilabel)
                for name in missing_in_train(fold[0], picked):
                    missing_by[fraction].setdefault(name, []).append(seed)
                chosen.append(picked)
            chosen_by[fraction, seed] = chosen
    jobs = [
        (fraction, seed, d, i)
        for fraction, seed in chosen_by
        for d in range(len(draws))
        for i in range(len(views))
    ]
    desc = f"probe {cfg.head}" + (f" ({len(folds)} folds)" if folds else "")
    fitted = _fit_shared(
        jobs, lambda f, s, d, i: once(views[i][d], chosen_by[f, s][i], cfg, s), desc
    )
    out: dict[str, dict[str, Any]] = {}
    for fraction in fractions:
        runs, notes = [], []
        for message in _set_up_warnings(views[0][0], cfg):
            _warn(message, notes)
        missing = missing_by[fraction]
        for seed in seeds_for(fraction, cfg, seeds):
            chosen = chosen_by[fraction, seed]
            for d in range(len(draws)):
                results = [fitted[fraction, seed, d, i] for i in range(len(views))]
                res = merge_folds(results, first.multilabel) if folds else results[0]
                n_train = int(np.mean([len(c) for c in chosen]))
                runs.append({"seed": seed, "draw": d, "train_tracks": n_train, **res})
        missing = {name: sorted(set(in_seeds)) for name, in_seeds in missing.items()}
        for name, in_seeds in missing.items():
            _warn(
                f"label fraction {float(fraction):g}: class {name!r} has test tracks but no "
                f"training track (seeds {in_seeds}); the probe cannot predict it",
                notes,
            )
        metrics = [m for m in runs[0] if m in ("accuracy", "macro_f1", "roc_auc", "pr_auc")]
        cell = {m: _summary([r[m] for r in runs]) for m in metrics}
        primary = primary_metric(first.multilabel)
        cell[primary]["ci95"] = cell_interval(runs, primary, cfg.bootstrap)
        robust = {name: robustness(runs, name, primary, cfg.bootstrap) for name in first.corrupted}
        extra = {"corrupted": robust} if robust else {}
        out[str(float(fraction))] = {**cell, **extra, "runs": runs, "warnings": notes}
    return out


def robustness(runs: list[dict[str, Any]], name: str, metric: str, n_boot: int) -> dict[str, Any]:
    """One corruption's cell: ``metric`` on the corrupted test split (mean, std, values,
    ``ci95``) and its ``drop`` from the clean score (clean - corrupted, paired bootstrap over the
    same test tracks, seeds and draws: ``{"diff", "ci95", "verdict"}``)."""
    tagged = [{"seed": r["seed"], "draw": r["draw"], **r["corrupted"][name]} for r in runs]
    cell = {metric: _summary([r[metric] for r in tagged])}
    cell[metric]["ci95"] = cell_interval(tagged, metric, n_boot)
    cell["drop"] = paired_difference(runs, tagged, metric, n_boot)
    return cell
