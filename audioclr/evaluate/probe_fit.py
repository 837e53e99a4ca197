"""Fitting one probe head: standardised splits, linear (L-BFGS) or MLP (Adam) heads, cosine kNN.

Used by :mod:`audioclr.evaluate.probe`; every random choice comes from seeded generators.

Example:
    >>> train = Split(data, train_tracks, mean, std)
    >>> model, selection_key, steps = fit_linear(train, valid, 5, False, 1e-3, cfg, 0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from audioclr.evaluate.metrics import primary_metric, score_all
from audioclr.evaluate.probe_data import ProbeData

if TYPE_CHECKING:
    from audioclr.evaluate.probe_config import ProbeConfig


def track_scores(probs: np.ndarray, row_track: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    """Average ``(rows, classes)`` probabilities per track, in the order of ``tracks``."""
    pos = {int(t): i for i, t in enumerate(tracks)}
    sums = np.zeros((len(tracks), probs.shape[1]))
    counts = np.zeros(len(tracks))
    idx = np.array([pos[int(t)] for t in row_track])
    np.add.at(sums, idx, probs)
    np.add.at(counts, idx, 1)
    return sums / np.maximum(counts, 1)[:, None]


class Split:
    """Rows, row-level targets and track-level targets of one split."""

    def __init__(
        self, data: ProbeData, tracks: np.ndarray, mean: np.ndarray, std: np.ndarray
    ) -> None:
        self.tracks = tracks
        self.rows = data.rows_of(tracks)
        self.x = torch.from_numpy((data.x[self.rows] - mean) / std).float()
        self.row_track = data.row_track[self.rows]
        self.y_rows = data.targets[self.row_track]
        self.y_tracks = data.targets[tracks]


class Problem:
    """A head's training problem on ``device``: inputs, row targets, validation targets, loss."""

    def __init__(self, train: Split, valid: Split, multilabel: bool, device: torch.device) -> None:
        self.loss_fn = nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss()
        dtype = torch.float32 if multilabel else torch.long
        self.x = train.x.to(device)
        self.y = torch.as_tensor(np.asarray(train.y_rows)).to(device, dtype)
        self.y_val = torch.as_tensor(np.asarray(valid.y_rows)).to(device, dtype)


def _probs(model: nn.Module, x: torch.Tensor, multilabel: bool, device: torch.device) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        logits = model(x.to(device))
    out = torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=1)
    return out.cpu().numpy()


def predict_tracks(
    model: nn.Module, split: Split, multilabel: bool, device: torch.device
) -> np.ndarray:
    """Track-level ``(tracks, classes)`` probabilities of ``split`` (window rows averaged)."""
    return track_scores(_probs(model, split.x, multilabel, device), split.row_track, split.tracks)


def evaluate(
    model: nn.Module, split: Split, multilabel: bool, device: torch.device
) -> dict[str, float]:
    """Every metric of ``model`` on ``split`` at track level (see :func:`score_all`)."""
    return score_all(split.y_tracks, predict_tracks(model, split, multilabel, device), multilabel)


def _init(model: nn.Module, seed: int) -> None:
    """Seeded uniform(+-1/sqrt(fan_in)) init, independent of the global RNG."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                bound = 1 / np.sqrt(m.in_features)
                m.weight.copy_((torch.rand(m.weight.shape, generator=gen) * 2 - 1) * bound)
                m.bias.copy_((torch.rand(m.bias.shape, generator=gen) * 2 - 1) * bound)


def _selection(
    model: nn.Module,
    valid: Split,
    y: torch.Tensor,
    loss_fn: nn.Module,
    multilabel: bool,
    select: str,
) -> tuple[float, float]:
    """Validation selection key, larger is better: ``(primary metric, -loss)`` for
    ``select="metric"`` (the metric decides, the loss breaks ties), ``(-loss, metric)`` for
    ``select="loss"``."""
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        loss = float(loss_fn(model(valid.x.to(device)), y))
    metric = evaluate(model, valid, multilabel, device)[primary_metric(multilabel)]
    return (-loss, metric) if select == "loss" else (metric, -loss)


def fit_mlp(
    train: Split,
    valid: Split,
    n_classes: int,
    multilabel: bool,
    wd: float,
    cfg: ProbeConfig,
    seed: int,
) -> tuple[nn.Module, tuple[float, float], int]:
    """One-hidden-layer head (loss + ``wd * ||W||^2``), Adam, early stopping on validation.

    Returns (best model, its validation selection key (see ``_selection``), its epoch).
    """
    device = torch.device(cfg.device)
    gen = torch.Generator().manual_seed(seed)
    dim, hidden = train.x.shape[1], cfg.hidden
    model = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
    _init(model, seed + 1)
    model.to(device)
    p = Problem(train, valid, multilabel, device)
    weights = [w for w in model.parameters() if w.dim() > 1]
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    best, best_epoch, best_state = (-np.inf, -np.inf), 0, None
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        for idx in torch.randperm(len(p.x), generator=gen).split(cfg.batch_size):
            idx = idx.to(device)
            opt.zero_grad(set_to_none=True)
            loss = p.loss_fn(model(p.x[idx]), p.y[idx]) + wd * sum((w**2).sum() for w in weights)
            loss.backward()
            opt.step()
        score = _selection(model, valid, p.y_val, p.loss_fn, multilabel, cfg.select)
        if score > best:
            best, best_epoch = score, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= cfg.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, best, best_epoch


def fit_linear(
    train: Split,
    valid: Split,
    n_classes: int,
    multilabel: bool,
    wd: float,
    cfg: ProbeConfig,
    seed: int,
) -> tuple[nn.Module, tuple[float, float], int]:
    """Logistic regression (softmax, or sigmoid per class for multi-label) on the whole training
    set with L-BFGS to convergence, loss ``+ wd * ||W||^2``: nothing to stop early, so the
    score does not hang on a small validation split's epoch-to-epoch noise.

    Returns (model, its validation selection key (see ``_selection``), L-BFGS iterations run).
    """
    device = torch.device(cfg.device)
    model = nn.Linear(train.x.shape[1], n_classes)
    _init(model, seed + 1)
    model.to(device)
    p = Problem(train, valid, multilabel, device)
    opt = torch.optim.LBFGS(
        model.parameters(),
        max_iter=cfg.max_iterations,
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = p.loss_fn(model(p.x), p.y) + wd * (model.weight**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    iterations = int(opt.state_dict()["state"][0]["n_iter"])
    return model, _selection(model, valid, p.y_val, p.loss_fn, multilabel, cfg.select), iterations


def knn_scores(train: Split, split: Split, n_classes: int, multilabel: bool, k: int) -> np.ndarray:
    """Cosine kNN: mean of the ``k`` nearest training rows' (one-hot / multi-hot) labels."""
    a = torch.nn.functional.normalize(train.x, dim=1)
    b = torch.nn.functional.normalize(split.x, dim=1)
    nearest = (b @ a.T).topk(min(k, len(a)), dim=1).indices.numpy()
    onehot = train.y_rows.astype(np.float64) if multilabel else np.eye(n_classes)[train.y_rows]
    return track_scores(onehot[nearest].mean(axis=1), split.row_track, split.tracks)
