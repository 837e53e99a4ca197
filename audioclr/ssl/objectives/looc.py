"""LooC (Xiao et al., ICLR 2021): one embedding space invariant to every augmentation, plus one
space per augmentation group that stays sensitive to that group.

The step brings ``2 + n`` views per clip (``audioclr.ssl.views.make_views``): the query (view
a), view b (every transform drawn afresh), and for each group ``i`` a key view that shares
group ``i``'s parameters with the query and differs in all the others. One encoder pass; then

- the invariant head (lightly's SimCLR projection) is trained with NT-Xent between the query and
  each key view (view b and every group's key), negatives from the whole batch on every rank;
- head ``i`` (one per group) is trained with InfoNCE whose positive is (query, key ``i``) and
  whose negatives are the other clips' keys ``i`` (gathered from every rank) **and the same
  clip's other views**, which differ from the query in transform ``i``: the head, and so the
  encoder under it, must keep what transform ``i`` changes.

The loss is the mean over the ``1 + n`` spaces. The representation used downstream is the
encoder's (all blocks by default), which serves every head. Compute per step grows with the
views: at ``trainer.batch_size = B * 2 / (2 + n)`` a step costs what a two-view step of batch
``B`` costs.

Example:
    >>> obj = LooC(encoder, LooCConfig(groups=["pitch", "filter"]))
    >>> x, params = make_views(augment, a, b, g, obj.groups)     # (4B, samples)
    >>> loss, stats = obj.loss(encoder, x, None, g)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from lightly.utils import dist
from torch import Tensor, nn

from audioclr.config import require, require_positive
from audioclr.ssl.base import Encoder, FrontTransform
from audioclr.ssl.objectives.base import Objective, fp32, pair_stats
from audioclr.ssl.views import GROUPS


@dataclass
class LooCConfig:
    """``groups``: the augmentation groups that get a sensitive subspace (transform names of
    the augment section); heads and temperature as SimCLR's."""

    groups: list[str] = field(default_factory=lambda: ["pitch", "filter"])
    projection_hidden: int = 512
    projection_dim: int = 128
    temperature: float = 0.1

    def __post_init__(self) -> None:
        require_positive("looc", self, "projection_hidden", "projection_dim", "temperature")
        require(len(self.groups) > 0, "looc.groups", self.groups, "must name at least one group")
        for name in self.groups:
            require(name in GROUPS, "looc.groups", self.groups, f"each must be one of {GROUPS}")
        require(
            len(set(self.groups)) == len(self.groups), "looc.groups", self.groups, "has repeats"
        )


def sensitive_infonce(z: Tensor, views: int, key: int, temperature: float) -> Tensor:
    """InfoNCE of one sensitive space: ``z`` ``(views * B, d)`` (view blocks of B rows, the
    query first); the positive of query ``b`` is row ``b`` of view block ``key``; negatives are
    the other clips' rows of that block (all ranks) and clip ``b``'s rows of every other
    block except the query's."""
    z = F.normalize(z.float(), dim=1)
    blocks = z.chunk(views)
    query, keys = blocks[0], blocks[key]
    batch = query.shape[0]
    all_keys = torch.cat(dist.gather(keys)) if dist.world_size() > 1 else keys
    across = query @ all_keys.T  # (B, world * B): the positive at column rank * B + b
    others = [blocks[j] for j in range(1, views) if j != key]
    same_clip = torch.stack([(query * o).sum(dim=1) for o in others], dim=1)  # (B, views - 2)
    logits = torch.cat([across, same_clip], dim=1) / temperature
    target = torch.arange(batch, device=z.device) + dist.rank() * batch
    return F.cross_entropy(logits, target)


class LooC(Objective):
    """Invariant head + one sensitive head per group on ``2 + len(groups)`` views per clip."""

    config = LooCConfig

    def __init__(self, encoder: Encoder, cfg: LooCConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.groups: tuple[str, ...] = tuple(cfg.groups)

        def head() -> nn.Module:
            return SimCLRProjectionHead(
                encoder.output_dim, cfg.projection_hidden, cfg.projection_dim
            )

        self.invariant = head()
        self.sensitive = nn.ModuleList(head() for _ in self.groups)
        self.criterion = NTXentLoss(cfg.temperature, gather_distributed=True)

    def loss(
        self, encoder: Encoder, x: Tensor, front: FrontTransform | None, g: torch.Generator
    ) -> tuple[Tensor, dict[str, Tensor]]:
        views = 2 + len(self.groups)
        if x.shape[0] % views:
            raise ValueError(f"LooC takes {views} views per clip; got {x.shape[0]} rows")
        h = encoder(x, front)
        z0 = self.invariant(h)
        zs = [proj(h) for proj in self.sensitive]  # under autocast, like the encoder
        blocks = z0.chunk(views)
        stats: dict[str, Tensor] = {}
        with fp32(x):
            invariant = torch.stack(
                [self.criterion(blocks[0].float(), k.float()) for k in blocks[1:]]
            ).mean()
            losses = [invariant]
            for i, (group, z) in enumerate(zip(self.groups, zs, strict=True)):
                part = sensitive_infonce(z.float(), views, 2 + i, self.cfg.temperature)
                stats[f"looc_{group}"] = part.detach()
                losses.append(part)
            loss = torch.stack(losses).mean()
        pair = 2 * (x.shape[0] // views)  # the query and view b: the two-view figures
        stats["looc_invariant"] = invariant.detach()
        return loss, {**pair_stats(z0[:pair], h[:pair]), **stats}
