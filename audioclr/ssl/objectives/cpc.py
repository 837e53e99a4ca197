"""Contrastive Predictive Coding (van den Oord et al., 2018) on encoder frame latents.

z_t: frame latents ``(batch, frames, dim)`` from the encoder body before time pooling;
c_t = GRU(z_<=t); for k = 1..K a linear predictor W_k maps c_t to a guess of z_{t+k}, scored
against the true z_{t+k} and negatives (other time steps and other clips of the batch) with
InfoNCE (cross-entropy, the positive being class 0 or its own index). Both views of a clip are
just more clips here: CPC predicts within each view. The negatives are local to each rank.

Example:
    >>> head = CPCHead(latent_dim=64, context_dim=32, steps=3)
    >>> loss, acc = head(torch.randn(4, 20, 64), torch.Generator().manual_seed(0))
    >>> obj = CPC(encoder, CPCConfig(prediction_steps=2))  # the objective around the head
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audioclr.config import require
from audioclr.ssl.base import Encoder, FrontTransform
from audioclr.ssl.objectives.base import Objective, fp32, view_stats


@dataclass
class CPCConfig:
    """CPC: K prediction steps, GRU context size, negatives (0 = all latents of the batch)."""

    prediction_steps: int = 4
    context_dim: int = 256
    num_negatives: int = 0

    def __post_init__(self) -> None:
        require(
            self.prediction_steps >= 1,
            "cpc.prediction_steps",
            self.prediction_steps,
            "must be >= 1",
        )
        require(self.context_dim >= 1, "cpc.context_dim", self.context_dim, "must be >= 1")
        require(self.num_negatives >= 0, "cpc.num_negatives", self.num_negatives, "must be >= 0")


def infonce_all(pred: Tensor, z: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """InfoNCE with every latent of the batch as candidate.

    ``pred``: ``(batch, frames - k, dim)`` predictions of ``z[:, k:]``; ``z``: ``(batch, frames,
    dim)``. Each prediction scores all ``batch * frames`` latents; the target is its own
    ``z[b, t + k]``. Returns ``(mean loss, top-1 accuracy)``.
    """
    b, t, d = z.shape
    logits = pred.reshape(-1, d) @ z.reshape(-1, d).T  # (b*(t-k), b*t)
    rows = torch.arange(b, device=z.device)[:, None] * t + torch.arange(k, t, device=z.device)
    target = rows.reshape(-1)
    return F.cross_entropy(logits, target), (logits.argmax(1) == target).float().mean()


def sample_negatives(b: int, t: int, k: int, n: int, generator: torch.Generator) -> Tensor:
    """``(b*(t-k), n)`` flat indices into ``b*t`` latents, never the positive ``b*t_i + t + k``."""
    rows = torch.arange(b, device=generator.device)[:, None] * t + torch.arange(
        k, t, device=generator.device
    )
    pos = rows.reshape(-1, 1)
    r = torch.randint(0, b * t - 1, (pos.shape[0], n), generator=generator, device=generator.device)
    return r + (r >= pos).long()


def infonce_sampled(pred: Tensor, z: Tensor, k: int, neg_idx: Tensor) -> tuple[Tensor, Tensor]:
    """InfoNCE with the positive against ``neg_idx`` ``(b*(t-k), n)`` sampled latents.

    Logits are ``[pred . z_pos, pred . z_neg_1, ..., pred . z_neg_n]``; the target is 0.
    """
    b, t, d = z.shape
    flat = z.reshape(-1, d)
    p = pred.reshape(-1, d)
    pos = (p * z[:, k:].reshape(-1, d)).sum(-1, keepdim=True)
    neg = torch.einsum("nd,nmd->nm", p, flat[neg_idx.to(z.device)])
    logits = torch.cat([pos, neg], dim=1)
    target = torch.zeros(len(logits), dtype=torch.long, device=z.device)
    return F.cross_entropy(logits, target), (logits.argmax(1) == 0).float().mean()


class CPCHead(nn.Module):
    """GRU context network + K linear predictors + InfoNCE averaged over k = 1..K.

    ``num_negatives = 0`` scores every latent of the batch (all time steps, all clips);
    ``> 0`` samples that many per prediction from ``generator``.
    """

    def __init__(
        self, latent_dim: int, context_dim: int = 256, steps: int = 4, num_negatives: int = 0
    ) -> None:
        super().__init__()
        self.steps, self.num_negatives = steps, num_negatives
        self.gru = nn.GRU(latent_dim, context_dim, batch_first=True)
        self.predictors = nn.ModuleList(
            nn.Linear(context_dim, latent_dim, bias=False) for _ in range(steps)
        )

    def forward(self, z: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``z``: ``(batch, frames > steps, dim)`` -> ``(loss, accuracy)`` averaged over k."""
        b, t, _ = z.shape
        if t <= self.steps:
            raise ValueError(
                f"CPC needs more than steps={self.steps} frames, got {t}: use longer "
                "crops or less time pooling"
            )
        c, _ = self.gru(z)
        losses, accs = [], []
        for k, w in enumerate(self.predictors, start=1):
            pred = w(c[:, : t - k])
            if self.num_negatives > 0:
                assert generator is not None, "sampled negatives need a generator"
                idx = sample_negatives(b, t, k, self.num_negatives, generator)
                loss, acc = infonce_sampled(pred, z, k, idx)
            else:
                loss, acc = infonce_all(pred, z, k)
            losses.append(loss)
            accs.append(acc)
        return torch.stack(losses).mean(), torch.stack(accs).mean()


class CPC(Objective):
    """Frame latents of both views -> ``CPCHead``; ``pos_acc`` is the InfoNCE top-1 accuracy."""

    config = CPCConfig

    def __init__(self, encoder: Encoder, cfg: CPCConfig) -> None:
        super().__init__()
        self.head = CPCHead(
            encoder.frame_dim, cfg.context_dim, cfg.prediction_steps, cfg.num_negatives
        )

    def loss(
        self, encoder: Encoder, x: Tensor, front: FrontTransform | None, g: torch.Generator
    ) -> tuple[Tensor, dict[str, Tensor]]:
        z = encoder.frames(x, front).transpose(1, 2)  # (2B, frames, dim)
        with fp32(x):
            loss, pos_acc = self.head(z.float(), g)
        return loss, view_stats(pos_acc, z.mean(dim=1))
