"""Optimizers (AdamW or lightly's LARS) and the linear-warmup + cosine learning-rate schedule.

Example:
    >>> f = WarmupCosine(warmup_steps=10, total_steps=100, min_ratio=0.0)
    >>> f(0), f(10), round(f(100), 6)
    (0.1, 1.0, 0.0)
"""

from __future__ import annotations

import math

import torch
from lightly.utils.lars import LARS
from torch import nn

from audioclr.ssl.config import OptimConfig


class WarmupCosine:
    """LR multiplier: linear from ``1/warmup`` to 1 over ``warmup_steps``, then cosine to
    ``min_ratio`` at ``total_steps``. A plain object, so ``LambdaLR`` saves its fields.

    ``time_progress`` (the share of a time budget spent, set by ``TimeBudgetSchedule``) moves the
    cosine on when it is ahead of the steps, so a run stopped by ``trainer.max_minutes`` still
    ends at ``min_ratio``.
    """

    def __init__(self, warmup_steps: int, total_steps: int, min_ratio: float) -> None:
        self.warmup_steps, self.total_steps, self.min_ratio = warmup_steps, total_steps, min_ratio
        self.time_progress = 0.0

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, max((step - self.warmup_steps) / span, self.time_progress))
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weights of rank >= 2 only (not on biases or norm scales)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    other = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]


def build_optimizer(
    model: nn.Module, cfg: OptimConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """``(optimizer, per-step scheduler)`` for ``model`` from ``cfg``."""
    groups = param_groups(model, cfg.weight_decay)
    if cfg.name == "lars":
        opt: torch.optim.Optimizer = LARS(groups, lr=cfg.lr, momentum=cfg.momentum)
    else:
        opt = torch.optim.AdamW(groups, lr=cfg.lr)
    schedule = WarmupCosine(cfg.warmup_steps, total_steps, cfg.min_lr_ratio)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)
