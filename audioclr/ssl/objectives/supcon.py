"""Multi-positive NT-Xent: the supervised-contrastive loss (Khosla et al., 2020, L_out) with
metadata groups as labels, so other clips of the same group are positives, not negatives.

For anchor view ``i`` among the ``2M`` views of the global batch (both views of every clip on
every rank), ``A(i)`` is every other view and ``P(i)`` the views of the same clip or of a clip
sharing a group id with it:
``L_i = -1/|P(i)| sum_{p in P(i)} log(exp(s_ip / t) / sum_{a in A(i)} exp(s_ia / t))``, ``s``
the cosine similarity; the loss is the mean over this rank's anchors (DDP's gradient average
then gives the full-batch mean). With no shared group every ``P(i)`` is the other view of the
clip and this is lightly's ``NTXentLoss`` exactly. Embeddings are gathered from every rank with
lightly's ``dist.gather`` (gradients flow back); group ids are all-gathered with them.
lightly (1.6) has no supervised-contrastive loss, hence this module.

Example:
    >>> loss_fn = SupConLoss(temperature=0.1)
    >>> ids = torch.tensor([[0], [0], [1], [-1]])        # (batch, width); -1 = no group
    >>> loss = loss_fn(z_a, z_b, ids)                    # clips 0 and 1 attract
"""

from __future__ import annotations

import torch
import torch.distributed as torch_dist
import torch.nn.functional as F
from lightly.utils import dist
from torch import Tensor, nn


def shared_groups(ids_a: Tensor, ids_b: Tensor) -> Tensor:
    """``(n, m)`` bool: row ``i`` of ``ids_a`` ``(n, width)`` and row ``j`` of ``ids_b``
    ``(m, width)`` share a group id ``>= 0``."""
    if ids_a.shape[1] == 1:
        return (ids_a == ids_b.T) & (ids_a >= 0)
    groups = int(max(ids_a.max(), ids_b.max()).item()) + 1
    if groups <= 0:
        return torch.zeros(len(ids_a), len(ids_b), dtype=torch.bool, device=ids_a.device)

    def hot(ids: Tensor) -> Tensor:  # (rows, groups) multi-hot, -1 dropped
        out = torch.zeros(len(ids), groups + 1, device=ids.device)
        out.scatter_(1, torch.where(ids >= 0, ids, groups), 1.0)
        return out[:, :groups]

    return (hot(ids_a) @ hot(ids_b).T) > 0


def all_gather_ids(ids: Tensor) -> Tensor:
    """``ids`` of every rank, in rank order (no gradient; the rank's own when not distributed)."""
    if dist.world_size() == 1:
        return ids
    parts = [torch.empty_like(ids) for _ in range(dist.world_size())]
    torch_dist.all_gather(parts, ids.contiguous())
    return torch.cat(parts)


class SupConLoss(nn.Module):
    """Multi-positive NT-Xent on ``(out0, out1, group_ids)``; see the module docstring.

    ``gather_distributed``: compare with the views of every rank (batch sizes equal across
    ranks, as the step sampler gives).

    Example:
        >>> SupConLoss(0.1)(torch.randn(4, 8), torch.randn(4, 8), torch.full((4, 1), -1))
    """

    def __init__(self, temperature: float = 0.1, gather_distributed: bool = True) -> None:
        super().__init__()
        if abs(temperature) < 1e-8:
            raise ValueError(f"temperature must not be 0, got {temperature}")
        self.temperature, self.gather_distributed = temperature, gather_distributed

    def forward(self, out0: Tensor, out1: Tensor, group_ids: Tensor) -> Tensor:
        """``out0``, ``out1``: the two views' projections ``(batch, dim)``; ``group_ids``
        ``(batch, width)`` int64 (-1: none) -> the mean loss over this rank's ``2 * batch``
        anchors."""
        n = out0.shape[0]
        out0, out1 = F.normalize(out0, dim=1), F.normalize(out1, dim=1)
        ids = group_ids.to(out0.device).long()
        if self.gather_distributed and dist.world_size() > 1:
            all0, all1 = torch.cat(dist.gather(out0)), torch.cat(dist.gather(out1))
            all_ids, offset = all_gather_ids(ids), dist.rank() * n
        else:
            all0, all1, all_ids, offset = out0, out1, ids, 0
        m = all0.shape[0]
        anchors, keys = torch.cat([out0, out1]), torch.cat([all0, all1])  # (2n, d), (2m, d)
        clip = torch.arange(n, device=out0.device) + offset
        anchor_clip = torch.cat([clip, clip])
        key_clip = torch.arange(m, device=out0.device).repeat(2)
        rows = torch.arange(2 * n, device=out0.device)
        self_col = anchor_clip + (rows >= n).long() * m  # each anchor's own column
        is_self = torch.zeros(2 * n, 2 * m, dtype=torch.bool, device=out0.device)
        is_self[rows, self_col] = True
        positive = (anchor_clip[:, None] == key_clip[None, :]) | shared_groups(
            torch.cat([ids, ids]), torch.cat([all_ids, all_ids])
        )
        positive &= ~is_self
        logits = (anchors @ keys.T / self.temperature).masked_fill(is_self, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        per_anchor = -torch.where(positive, log_prob, 0.0).sum(1) / positive.sum(1)
        return per_anchor.mean()
