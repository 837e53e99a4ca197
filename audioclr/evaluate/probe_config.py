"""How a probe is trained: ``ProbeConfig`` (the YAML key ``probe`` of a suite) and the heads.

Heads: ``linear``, ``mlp``, ``knn`` (on frozen embeddings), ``finetune`` (the whole encoder
trained with a new linear head) and ``finetune:K`` (the first K layers frozen, the rest trained;
``evaluate/finetune.py``).

Example:
    >>> ProbeConfig(head="knn", k=10).k
    10
    >>> check_head("finetune:2"), frozen_layers("finetune:2"), frozen_layers("linear")
    ('finetune:2', 2, None)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from audioclr.config import CONFIG_ROOT, require

STANDARDIZE = ("labelled", "train_audio")
SELECT = ("metric", "loss")
HEADS = ("linear", "mlp", "knn", "finetune")  # and finetune:K, K >= 0 layers frozen
FINETUNE = "finetune"


def frozen_layers(head: str) -> int | None:
    """Layers a fine-tuning head freezes (``finetune``: 0, ``finetune:K``: K); None for the
    heads on frozen embeddings (and for a malformed name)."""
    name, colon, k = head.partition(":")
    if name != FINETUNE:
        return None
    if not colon:
        return 0
    return int(k) if k.isdigit() else None


def is_finetune(head: str) -> bool:
    """Whether ``head`` trains the encoder (``finetune`` or ``finetune:K``)."""
    return frozen_layers(head) is not None


def check_head(head: str, key: str = "probe.head") -> str:
    """``head`` if one of :data:`HEADS` or ``finetune:K``; else ``ConfigError`` naming ``key``."""
    require(
        head in HEADS or is_finetune(head),
        key,
        head,
        f"must be one of {list(HEADS)} or finetune:K (K = layers to freeze)",
    )
    return head


@dataclass
class ProbeConfig:
    """How a probe is trained (YAML key ``probe``); ``bootstrap``: replicates of each cell's
    95 % interval. ``finetune_*``: the fine-tuning heads (learning rates chosen on the valid
    split, epochs with early stopping, window batch, device, and the waveform augmentation:
    ``none``, ``pretraining`` (the exported encoder's own ``augment`` section) or a preset of
    ``configs/augment``). ``standardize``: where the frozen heads' feature mean and standard
    deviation come from: ``labelled`` (the labelled training tracks of the run) or
    ``train_audio`` (every training track, labels unused: at 1 % of the labels the statistics
    of a few clips are noisy, while the unlabelled rest of the training audio is at hand; the
    test and validation tracks are never used). ``select``: what picks the weight decay (and
    the MLP's epoch) on the validation split: ``metric`` (its accuracy or ROC-AUC, the loss
    breaking ties) or ``loss`` (its cross-entropy, a smoother signal on a small split)."""

    head: str = "linear"
    weight_decays: list[float] = field(default_factory=lambda: [1e-5, 1e-4, 1e-3, 1e-2, 1e-1])
    lr: float = 1e-2
    max_epochs: int = 100
    max_iterations: int = 500
    patience: int = 10
    batch_size: int = 64
    hidden: int = 256
    k: int = 5
    device: str = "cpu"
    bootstrap: int = 1000
    finetune_lrs: list[float] = field(default_factory=lambda: [1e-4, 1e-3])
    finetune_epochs: int = 30
    finetune_patience: int = 5
    finetune_batch_size: int = 16
    finetune_augment: str = "none"
    standardize: str = "labelled"
    select: str = "metric"

    def __post_init__(self) -> None:
        check_head(self.head)
        require(
            len(self.weight_decays) > 0 and min(self.weight_decays) >= 0,
            "probe.weight_decays",
            self.weight_decays,
            "must be a non-empty list of values >= 0",
        )
        require(self.lr > 0, "probe.lr", self.lr, "must be > 0")
        require(self.max_epochs > 0, "probe.max_epochs", self.max_epochs, "must be > 0")
        require(self.max_iterations > 0, "probe.max_iterations", self.max_iterations, "must be > 0")
        require(self.patience > 0, "probe.patience", self.patience, "must be > 0")
        require(self.batch_size > 0, "probe.batch_size", self.batch_size, "must be > 0")
        require(self.hidden > 0, "probe.hidden", self.hidden, "must be > 0")
        require(self.k > 0, "probe.k", self.k, "must be > 0")
        require(
            self.standardize in STANDARDIZE,
            "probe.standardize",
            self.standardize,
            f"must be one of {list(STANDARDIZE)}",
        )
        require(
            self.select in SELECT, "probe.select", self.select, f"must be one of {list(SELECT)}"
        )
        require(self.bootstrap > 0, "probe.bootstrap", self.bootstrap, "must be > 0")
        require(
            len(self.finetune_lrs) > 0 and min(self.finetune_lrs) > 0,
            "probe.finetune_lrs",
            self.finetune_lrs,
            "must be a non-empty list of values > 0",
        )
        for key in ("finetune_epochs", "finetune_patience", "finetune_batch_size"):
            require(getattr(self, key) > 0, f"probe.{key}", getattr(self, key), "must be > 0")
        presets = sorted(p.stem for p in (CONFIG_ROOT / "augment").glob("*.yaml"))
        require(
            self.finetune_augment in ("none", "pretraining", *presets)
            or Path(self.finetune_augment).is_file(),
            "probe.finetune_augment",
            self.finetune_augment,
            f"must be none, pretraining, a YAML path or a preset of configs/augment {presets}",
        )
