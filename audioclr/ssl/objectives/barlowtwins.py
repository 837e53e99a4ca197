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

from audioclr.config import require_non_negative, require_positive
from audioclr.ssl.base import Encoder, FrontTransform
from audioclr.ssl.objectives.base import Objective, projected_loss


@dataclass
class BarlowTwinsConfig:
    """Projection MLP (lightly's Barlow Twins head, three layers) and the off-diagonal weight."""

    projection_hidden: int = 2048
    projection_dim: int = 2048
    redundancy_weight: float = 5e-3  # lightly lambda_param

    def __post_init__(self) -> None:
        require_positive("barlowtwins", self, "projection_hidden", "projection_dim")
        require_non_negative("barlowtwins", self, "redundancy_weight")


class BarlowTwins(Objective):
    """Encoder -> Barlow Twins projection -> ``BarlowTwinsLoss`` between the two views."""

    config = BarlowTwinsConfig
    positives = "pairs"  # no negatives: a pair from two tracks of a group is just a pair

    def __init__(self, encoder: Encoder, cfg: BarlowTwinsConfig) -> None:
        super().__init__()
        self.projection = BarlowTwinsProjectionHead(
            encoder.output_dim, cfg.projection_hidden, cfg.projection_dim
        )
        self.criterion = BarlowTwinsLoss(cfg.redundancy_weight, gather_distributed=True)

    def loss(
        self, encoder: Encoder, x: Tensor, front: FrontTransform | None, g: torch.Generator
    ) -> tuple[Tensor, dict[str, Tensor]]:
        return projected_loss(encoder, self.projection, self.criterion, x, front)
