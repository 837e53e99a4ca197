"""SimCLR (Chen et al., 2020): projection head -> NT-Xent (lightly), negatives from every rank.

With metadata positives (``data.positives=group:<column>`` or ``playlist``) the batch carries
group ids and the loss is the multi-positive form (``supcon.SupConLoss``): clips of a shared
group are positives, never negatives, across ranks too. ``layer=all`` feeds the projection head
every block's statistics (``audioclr.ssl.pooling.block_stats``, the vector the probes read by
default) instead of the pooled embedding, so the loss reaches each block directly.

Example:
    >>> enc = build_encoder("melcnn", 8000, widths=[8, 16])
    >>> obj = SimCLR(enc, SimCLRConfig(projection_hidden=32, projection_dim=16))
    >>> loss, stats = obj.loss(enc, torch.randn(8, enc.input_samples), None, torch.Generator())
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from torch import Tensor

from audioclr.config import require, require_non_negative, require_positive
from audioclr.ssl.base import Encoder, FrontTransform
from audioclr.ssl.objectives.base import Objective, projected_loss
from audioclr.ssl.objectives.supcon import SupConLoss
from audioclr.ssl.pooling import block_stats, block_stats_dim

LAYERS = ("last", "all")


@dataclass
class SimCLRConfig:
    """Projection head and NT-Xent loss (lightly)."""

    projection_hidden: int = 512
    projection_dim: int = 128
    temperature: float = 0.1
    # > 0: negatives from a queue of past projections (no momentum encoder; on the suite's
    # recipe it did not learn: benchmarks/results/simclr-knobs.md)
    memory_bank_size: int = 0
    # the head's input: "last" (the pooled embedding) or "all" (every block's mean and standard
    # deviation over time, the probes' default representation)
    layer: str = "last"

    def __post_init__(self) -> None:
        require_positive("simclr", self, "projection_hidden", "projection_dim", "temperature")
        require_non_negative("simclr", self, "memory_bank_size")
        require(self.layer in LAYERS, "simclr.layer", self.layer, f"must be one of {LAYERS}")


class SimCLR(Objective):
    """Encoder -> projection -> NT-Xent between the two views of each clip; the other
    ``2N - 2`` views of the global batch (all ranks, ``gather_distributed``) are negatives."""

    config = SimCLRConfig
    positives = "multi"  # group ids -> SupConLoss

    def __init__(self, encoder: Encoder, cfg: SimCLRConfig) -> None:
        super().__init__()
        self.layer = cfg.layer
        width = block_stats_dim(encoder) if cfg.layer == "all" else encoder.output_dim
        self.projection = SimCLRProjectionHead(width, cfg.projection_hidden, cfg.projection_dim)
        bank = (cfg.memory_bank_size, cfg.projection_dim) if cfg.memory_bank_size else 0
        self.criterion = NTXentLoss(cfg.temperature, memory_bank_size=bank, gather_distributed=True)
        self.group_criterion = SupConLoss(cfg.temperature, gather_distributed=True)

    def loss(
        self,
        encoder: Encoder,
        x: Tensor,
        front: FrontTransform | None,
        g: torch.Generator,
        group_ids: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """NT-Xent, or the multi-positive loss when ``group_ids`` ``(batch, width)`` is given."""
        criterion: Callable[[Tensor, Tensor], Tensor] = self.criterion
        if group_ids is not None:
            criterion = partial(self.group_criterion, group_ids=group_ids)
        embed = partial(block_stats, encoder) if self.layer == "all" else encoder
        return projected_loss(embed, self.projection, criterion, x, front)
