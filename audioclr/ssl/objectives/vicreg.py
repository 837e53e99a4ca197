"""VICReg (Bardes et al., 2022): invariance + variance + covariance on projections (lightly).

No negatives and no teacher: the variance term keeps every projection dimension spread over the
batch and the covariance term decorrelates dimensions, which prevents collapse. With several
ranks lightly gathers the projections for the variance and covariance terms.

Example:
    >>> obj = VICReg(encoder, VICRegConfig(projection_hidden=64, projection_dim=64))
    >>> loss, stats = obj.loss(encoder, x, None, g)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from lightly.loss import VICRegLoss
from lightly.models.modules.heads import VICRegProjectionHead
from torch import Tensor

from audioclr.config import require, require_non_negative, require_positive
from audioclr.ssl.base import Encoder, FrontTransform
from audioclr.ssl.objectives.base import Objective, projected_loss


@dataclass
class VICRegConfig:
    """Projection MLP (lightly's VICReg head) and the weights of the three loss terms."""

    projection_hidden: int = 2048
    projection_dim: int = 2048
    projection_layers: int = 3
    invariance_weight: float = 25.0  # lightly lambda_param
    variance_weight: float = 25.0  # lightly mu_param
    covariance_weight: float = 1.0  # lightly nu_param

    def __post_init__(self) -> None:
        require_positive("vicreg", self, "projection_hidden", "projection_dim")
        require(
            self.projection_layers >= 2,
            "vicreg.projection_layers",
            self.projection_layers,
            "must be >= 2",
        )
        require_non_negative(
            "vicreg", self, "invariance_weight", "variance_weight", "covariance_weight"
        )


class VICReg(Objective):
    """Encoder -> VICReg projection -> ``VICRegLoss`` between the two views."""

    config = VICRegConfig
    positives = "pairs"  # no negatives: a pair from two tracks of a group is just a pair

    def __init__(self, encoder: Encoder, cfg: VICRegConfig) -> None:
        super().__init__()
        self.projection = VICRegProjectionHead(
            encoder.output_dim, cfg.projection_hidden, cfg.projection_dim, cfg.projection_layers
        )
        self.criterion = VICRegLoss(
            cfg.invariance_weight,
            cfg.variance_weight,
            cfg.covariance_weight,
            gather_distributed=True,
        )

    def loss(
        self, encoder: Encoder, x: Tensor, front: FrontTransform | None, g: torch.Generator
    ) -> tuple[Tensor, dict[str, Tensor]]:
        return projected_loss(encoder, self.projection, self.criterion, x, front)
