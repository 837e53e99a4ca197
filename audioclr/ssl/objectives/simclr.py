"""SimCLR (Chen et al., 2020): projection head -> NT-Xent (lightly), negatives from every rank.

Example:
    >>> enc = build_encoder("melcnn", 8000, widths=[8, 16])
    >>> obj = SimCLR(enc, SimCLRConfig(projection_hidden=32, projection_dim=16))
    >>> loss, stats = obj.loss(enc, torch.randn(8, enc.input_samples), None, torch.Generator())
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from torch import Tensor

from audioclr.config import require
from audioclr.ssl.base import Encoder, FrontTransform
from audioclr.ssl.objectives.base import Objective, fp32, pair_stats


@dataclass
class SimCLRConfig:
    """Projection head and NT-Xent loss (lightly)."""

    projection_hidden: int = 512
    projection_dim: int = 128
    temperature: float = 0.1
    memory_bank_size: int = 0  # > 0: MoCo-style negatives from a memory bank

    def __post_init__(self) -> None:
        require(self.projection_hidden > 0, "simclr.projection_hidden", self.projection_hidden,
                "must be > 0")
        require(self.projection_dim > 0, "simclr.projection_dim", self.projection_dim,
                "must be > 0")
        require(self.temperature > 0, "simclr.temperature", self.temperature, "must be > 0")
        require(self.memory_bank_size >= 0, "simclr.memory_bank_size", self.memory_bank_size,
                "must be >= 0")


class SimCLR(Objective):
    """Encoder -> projection -> NT-Xent between the two views of each clip; the other
    ``2N - 2`` views of the global batch (all ranks, ``gather_distributed``) are negatives."""

    config = SimCLRConfig

    def __init__(self, encoder: Encoder, cfg: SimCLRConfig) -> None:
        super().__init__()
        self.projection = SimCLRProjectionHead(encoder.output_dim, cfg.projection_hidden,
                                               cfg.projection_dim)
        bank = (cfg.memory_bank_size, cfg.projection_dim) if cfg.memory_bank_size else 0
        self.criterion = NTXentLoss(cfg.temperature, memory_bank_size=bank,
                                    gather_distributed=True)

    def loss(self, encoder: Encoder, x: Tensor, front: FrontTransform | None,
             g: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
        h = encoder(x, front)
        z = self.projection(h)
        z_a, z_b = z.chunk(2)
        with fp32(x):
            loss = self.criterion(z_a.float(), z_b.float())
        return loss, pair_stats(z, h)
