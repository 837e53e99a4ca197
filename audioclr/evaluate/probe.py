"""Probes on frozen embeddings: linear (or one-hidden-layer MLP) heads in torch, and cosine kNN.

Features are standardised with statistics of the training rows. Single-label tasks train with
softmax cross-entropy, multi-label with sigmoid BCE (Adam). Weight decay (an L2 penalty
``wd * ||W||^2`` on the weights) is chosen on the validation split from a small grid and the
number of epochs by early stopping on it (validation metric, ties broken by validation loss);
scores are computed on
the test split at track level (window probabilities averaged per track). Each label fraction is
run for several seeds and reported as mean +- std.

Example:
    >>> data = align(load_embeddings("emb/"), load_labelled_set("labels.csv"))
    >>> res = run_probe(data, ProbeConfig(head="linear"), fractions=[0.1, 1.0], seeds=[0, 1, 2])
    >>> res["1.0"]["accuracy"]
    {'mean': 0.91, 'std': 0.01, 'values': [0.9, 0.92, 0.91]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from audioclr.config import require
from audioclr.evaluate.metrics import primary_metric, score_all
from audioclr.evaluate.probe_data import ProbeData, sample_fraction

HEADS = ("linear", "mlp", "knn")


@dataclass
class ProbeConfig:
    """How a probe is trained (YAML key ``probe``)."""

    head: str = "linear"
    weight_decays: list[float] = field(default_factory=lambda: [0.0, 1e-3, 1e-2, 1e-1])
    lr: float = 1e-2
    max_epochs: int = 100
    patience: int = 10
    batch_size: int = 64
    hidden: int = 256
    k: int = 5
    device: str = "cpu"

    def __post_init__(self) -> None:
        require(self.head in HEADS, "probe.head", self.head, f"must be one of {list(HEADS)}")
        require(
            len(self.weight_decays) > 0 and min(self.weight_decays) >= 0,
            "probe.weight_decays",
            self.weight_decays,
            "must be a non-empty list of values >= 0",
        )
        require(self.lr > 0, "probe.lr", self.lr, "must be > 0")
        require(self.max_epochs > 0, "probe.max_epochs", self.max_epochs, "must be > 0")
        require(self.patience > 0, "probe.patience", self.patience, "must be > 0")
        require(self.batch_size > 0, "probe.batch_size", self.batch_size, "must be > 0")
        require(self.hidden > 0, "probe.hidden", self.hidden, "must be > 0")
        require(self.k > 0, "probe.k", self.k, "must be > 0")


def _track_scores(probs: np.ndarray, row_track: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    """Average ``(rows, classes)`` probabilities per track, in the order of ``tracks``."""
    pos = {int(t): i for i, t in enumerate(tracks)}
    sums = np.zeros((len(tracks), probs.shape[1]))
    counts = np.zeros(len(tracks))
    idx = np.array([pos[int(t)] for t in row_track])
    np.add.at(sums, idx, probs)
    np.add.at(counts, idx, 1)
    return sums / np.maximum(counts, 1)[:, None]


class _Split:
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


def _build_head(dim: int, classes: int, cfg: ProbeConfig) -> nn.Module:
    if cfg.head == "mlp":
        return nn.Sequential(nn.Linear(dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, classes))
    return nn.Linear(dim, classes)


def _probs(model: nn.Module, x: torch.Tensor, multilabel: bool, device: torch.device) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        logits = model(x.to(device))
    out = torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=1)
    return out.cpu().numpy()


def _evaluate(
    model: nn.Module, split: _Split, multilabel: bool, device: torch.device
) -> dict[str, float]:
    probs = _track_scores(_probs(model, split.x, multilabel, device), split.row_track, split.tracks)
    return score_all(split.y_tracks, probs, multilabel)


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
    model: nn.Module, valid: _Split, y: torch.Tensor, loss_fn: nn.Module, multilabel: bool
) -> tuple[float, float]:
    """Validation (primary metric, -loss): the metric decides, the loss breaks ties."""
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        loss = float(loss_fn(model(valid.x.to(device)), y))
    return _evaluate(model, valid, multilabel, device)[primary_metric(multilabel)], -loss


def _fit(
    train: _Split,
    valid: _Split,
    n_classes: int,
    multilabel: bool,
    wd: float,
    cfg: ProbeConfig,
    seed: int,
) -> tuple[nn.Module, tuple[float, float], int]:
    """Train one head (loss + ``wd * ||W||^2``), early stopping on validation.

    Returns (best model, its validation (metric, -loss), its epoch).
    """
    device = torch.device(cfg.device)
    gen = torch.Generator().manual_seed(seed)
    model = _build_head(train.x.shape[1], n_classes, cfg)
    _init(model, seed + 1)
    model.to(device)
    weights = [p for p in model.parameters() if p.dim() > 1]
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss_fn = nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss()
    cast = (lambda t: t.float()) if multilabel else (lambda t: t.long())
    y = cast(torch.from_numpy(np.asarray(train.y_rows))).to(device)
    y_val = cast(torch.from_numpy(np.asarray(valid.y_rows))).to(device)
    x = train.x.to(device)
    best, best_epoch, best_state = (-np.inf, -np.inf), 0, None
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(cfg.batch_size):
            idx = idx.to(device)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx]) + wd * sum((w**2).sum() for w in weights)
            loss.backward()
            opt.step()
        score = _selection(model, valid, y_val, loss_fn, multilabel)
        if score > best:
            best, best_epoch = score, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= cfg.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, best, best_epoch


def _knn_scores(
    train: _Split, split: _Split, n_classes: int, multilabel: bool, k: int
) -> np.ndarray:
    """Cosine kNN: mean of the ``k`` nearest training rows' (one-hot / multi-hot) labels."""
    a = torch.nn.functional.normalize(train.x, dim=1)
    b = torch.nn.functional.normalize(split.x, dim=1)
    nearest = (b @ a.T).topk(min(k, len(a)), dim=1).indices.numpy()
    onehot = train.y_rows.astype(np.float64) if multilabel else np.eye(n_classes)[train.y_rows]
    return _track_scores(onehot[nearest].mean(axis=1), split.row_track, split.tracks)


def probe_once(
    data: ProbeData, train_tracks: np.ndarray, cfg: ProbeConfig, seed: int
) -> dict[str, Any]:
    """Fit on ``train_tracks``, select on the valid split, score on test: metrics plus choices."""
    rows = data.rows_of(train_tracks)
    mean, std = data.x[rows].mean(axis=0), data.x[rows].std(axis=0) + 1e-6
    train = _Split(data, train_tracks, mean, std)
    valid_tracks = data.split_indices("valid")
    valid = _Split(data, valid_tracks if len(valid_tracks) else train_tracks, mean, std)
    test = _Split(data, data.split_indices("test"), mean, std)
    n_classes = len(data.classes)
    if cfg.head == "knn":
        scores = _knn_scores(train, test, n_classes, data.multilabel, cfg.k)
        result = score_all(test.y_tracks, scores, data.multilabel)
        return {**result, "k": cfg.k, "train_rows": len(train.rows)}
    fits = [
        (_fit(train, valid, n_classes, data.multilabel, wd, cfg, seed), wd)
        for wd in cfg.weight_decays
    ]
    (model, _, epochs), wd = max(fits, key=lambda f: f[0][1])
    result = _evaluate(model, test, data.multilabel, torch.device(cfg.device))
    return {**result, "weight_decay": wd, "epochs": epochs, "train_rows": len(train.rows)}


def _summary(values: list[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std()), "values": [float(v) for v in arr]}


def run_probe(
    data: ProbeData,
    cfg: ProbeConfig,
    fractions: list[float] = (1.0,),  # type: ignore[assignment]
    seeds: list[int] = (0,),
) -> dict[str, dict[str, Any]]:  # type: ignore[assignment]
    """Every fraction x seed: ``{fraction: {metric: {mean, std, values}, "runs": [...]}}``."""
    out: dict[str, dict[str, Any]] = {}
    train_all = data.split_indices("train")
    for fraction in fractions:
        runs = []
        for seed in seeds:
            chosen = sample_fraction(data.targets, train_all, fraction, seed, data.multilabel)
            runs.append(
                {"seed": seed, "train_tracks": len(chosen), **probe_once(data, chosen, cfg, seed)}
            )
        metrics = [m for m in runs[0] if m in ("accuracy", "macro_f1", "roc_auc", "pr_auc")]
        out[str(float(fraction))] = {
            **{m: _summary([r[m] for r in runs]) for m in metrics},
            "runs": runs,
        }
    return out
