"""Barlow Twins (Zbontar et al., 2021): the cross-correlation of the two views' projections,
batch-normalised per view, pushed toward the identity (lightly ``BarlowTwinsLoss``).

Diagonal terms make the views agree; off-diagonal terms (weighted by
``barlowtwins.redundancy_weight``) decorrelate dimensions. With several ranks lightly
all-reduces the correlation matrix, so the loss is that of the global batch.

Example:
    >>> obj = BarlowTwins(encoder, BarlowTwinsConfig(projection_hidden=64, projection_dim=64))
    >>> loss, stats = obj.loss(encoder, x, None, g)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from lightly.loss import BarlowTwinsLoss
from lightly.models.modules import BarlowTwinsProjectionHead
from torch import Tensor

from audioclr.config import require
from audioclr.ssl.base import Encoder, FrontTransform
from audioclr.ssl.objectives.base import Objective, fp32, pair_stats


@dataclass
class BarlowTwinsConfig:
    """Projection MLP (lightly's Barlow Twins head, three layers) and the off-diagonal weight."""

    projection_hidden: int = 2048
    projection_dim: int = 2048
    redundancy_weight: float = 5e-3  # lightly lambda_param

    def __post_init__(self) -> None:
        for key in ("projection_hidden", "projection_dim"):
            value = getattr(self, key)
            require(value > 0, f"barlowtwins.{key}", value, "must be > 0")
        require(self.redundancy_weight >= 0, "barlowtwins.redundancy_weight",
                self.redundancy_weight, "must be >= 0")


class BarlowTwins(Objective):
    """Encoder -> Barlow Twins projection -> ``BarlowTwinsLoss`` between the two views."""

    config = BarlowTwinsConfig

    def __init__(self, encoder: Encoder, cfg: BarlowTwinsConfig) -> None:
        super().__init__()
        self.projection = BarlowTwinsProjectionHead(encoder.output_dim, cfg.projection_hidden,
                                                    cfg.projection_dim)
        self.criterion = BarlowTwinsLoss(cfg.redundancy_weight, gather_distributed=True)

    def loss(self, encoder: Encoder, x: Tensor, front: FrontTransform | None,
             g: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
        h = encoder(x, front)
        z = self.projection(h)
        z_a, z_b = z.chunk(2)
        with fp32(x):
            loss = self.criterion(z_a.float(), z_b.float())
        return loss, pair_stats(z, h)
