"""How a probe is trained: ``ProbeConfig`` (the YAML key ``probe`` of a suite) and the heads.

Example:
    >>> ProbeConfig(head="knn", k=10).k
    10
"""

from __future__ import annotations

from dataclasses import dataclass, field

from audioclr.config import require

HEADS = ("linear", "mlp", "knn")


@dataclass
class ProbeConfig:
    """How a probe is trained (YAML key ``probe``); ``bootstrap``: replicates of each cell's
    95 % interval."""

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
        require(self.max_iterations > 0, "probe.max_iterations", self.max_iterations, "must be > 0")
        require(self.patience > 0, "probe.patience", self.patience, "must be > 0")
        require(self.batch_size > 0, "probe.batch_size", self.batch_size, "must be > 0")
        require(self.hidden > 0, "probe.hidden", self.hidden, "must be > 0")
        require(self.k > 0, "probe.k", self.k, "must be > 0")
        require(self.bootstrap > 0, "probe.bootstrap", self.bootstrap, "must be > 0")
