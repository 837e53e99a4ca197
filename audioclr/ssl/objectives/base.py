"""The ``Objective`` base class: what a self-supervised method is to the training step.

An objective is an ``nn.Module`` that owns its heads (and, for BYOL, a momentum teacher), turns
the two augmented views into a loss, reports the figures to log, and may update state after the
optimizer step (``after_step``). The encoder is owned by ``PretrainModule`` and passed in, so
its weights are stored once (under ``encoder.``) and an objective's own weights live under
``objective.`` in a checkpoint. Each objective has a config dataclass (``config``), the YAML
section of the same name as its ``OBJECTIVES`` entry.

Example:
    >>> obj = OBJECTIVES["simclr"](encoder, SimCLRConfig())
    >>> loss, stats = obj.loss(encoder, x, None, torch.Generator().manual_seed(0))
    >>> loss.backward(); opt.step(); obj.after_step(encoder, step=0, max_steps=1000)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from audioclr.ssl.base import Encoder, FrontTransform
from audioclr.ssl.metrics import alignment, embedding_std, positive_accuracy, uniformity


class Objective(nn.Module):
    """Heads + loss on two views + logged figures + after-step hook (a no-op by default).

    Subclasses set ``config`` and implement ``__init__(encoder, cfg)`` and ``loss``.
    """

    config: ClassVar[type[Any]]
    # what metadata positives (data.positives=group:<column> | playlist) mean to the objective:
    # "multi": its loss takes the batch's group ids (``loss(..., group_ids=...)``) and treats
    # clips of a shared group as positives (SimCLR); "pairs": no negatives, so a pair from two
    # tracks of a group is just a pair (BYOL, VICReg, Barlow Twins); "track": its loss is not
    # about the pair (CPC predicts within each view), data.positives must stay "track"
    positives: ClassVar[str] = "track"
    # augmentation groups that each need one more view per clip (LooC's key views,
    # ``audioclr.ssl.views.make_views``); empty: the two views of every other objective
    groups: tuple[str, ...] = ()

    def loss(
        self, encoder: Encoder, x: Tensor, front: FrontTransform | None, g: torch.Generator
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss of the views ``x`` ``(2 * batch, samples)`` (view a, then view b) and the
        figures to log (at least ``pos_acc``; see :func:`view_stats`). ``front``: the training
        edit of the front-end output (SpecAugment) or None; ``g``: this step's generator."""
        raise NotImplementedError  # pragma: no cover

    def after_step(self, encoder: Encoder, step: int, max_steps: int) -> None:
        """Called after ``optimizer.step()`` of step ``step`` (0-based) of ``max_steps``."""


def fp32(x: Tensor) -> torch.autocast:
    """A context that turns autocast off on ``x``'s device: losses are computed in float32."""
    return torch.autocast(x.device.type, enabled=False)


def projected_loss(
    encoder: Encoder | Callable[[Tensor, FrontTransform | None], Tensor],
    projection: nn.Module,
    criterion: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    front: FrontTransform | None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Encoder -> ``projection`` -> ``criterion(z_a, z_b)`` in float32, with :func:`pair_stats`.

    The loss of an objective that compares the two views' projections (SimCLR, VICReg, ...).
    ``encoder`` may be any ``(x, front) -> (batch, dim)`` map (SimCLR's ``layer=all``: the
    blocks' statistics, ``audioclr.ssl.pooling.block_stats``).

    Example:
        >>> loss, stats = projected_loss(encoder, self.projection, self.criterion, x, front)
    """
    h = encoder(x, front)
    z = projection(h)
    z_a, z_b = z.chunk(2)
    with fp32(x):
        loss = criterion(z_a.float(), z_b.float())
    return loss, pair_stats(z, h)


def view_stats(pos_acc: Tensor, h: Tensor) -> dict[str, Tensor]:
    """The logged figures: ``pos_acc`` as given, plus the collapse alarm (``emb_std``) and
    ``alignment``/``uniformity`` of the encoder outputs ``h`` ``(2 * batch, dim)``."""
    with fp32(h):
        h_a, h_b = h.detach().float().chunk(2)
        return {
            "pos_acc": pos_acc,
            "emb_std": embedding_std(h_a),
            "alignment": alignment(h_a, h_b),
            "uniformity": uniformity(h_a),
        }


def pair_stats(z: Tensor, h: Tensor) -> dict[str, Tensor]:
    """:func:`view_stats` with ``pos_acc`` measured on the projections ``z`` ``(2 * batch, d)``."""
    with fp32(z):
        z_a, z_b = z.detach().float().chunk(2)
        pos_acc = positive_accuracy(z_a, z_b)
    return view_stats(pos_acc, h)
