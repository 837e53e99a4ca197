"""AugSelf (Lee et al., NeurIPS 2021): predict how two views were augmented differently.

An auxiliary MLP reads the encoder's pooled outputs of the two views of each clip,
``cat(h_a, h_b)`` ``(batch, 2 * dim)``, and predicts the difference of their applied
augmentation parameters (``audioclr.augment.params``), each column divided by a fixed scale
(the width of the values it can take under the augment config, so every target lies in
``[-1, 1]``). Columns that cannot vary under the config (e.g. a transform with ``p = 0``) are
dropped. Loss: mean squared error. The encoder keeps the information the objective would
otherwise teach it to discard (pitch, timbre, level). Works with every objective: the module
captures the encoder's output while the objective runs (:func:`capture_pooled`), so no second
forward pass is needed.

Example:
    >>> head = AugSelfHead(dim=256, cfg=AugmentConfig(), hidden=256)
    >>> loss = head(h, params)        # h (2B, 256), params (2B, P): view a rows, then view b
    >>> total = objective_loss + 0.5 * loss
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audioclr.augment.config import AugmentConfig
from audioclr.augment.params import PARAM_NAMES, param_ranges
from audioclr.config import require
from audioclr.errors import ConfigError


@dataclass
class AugSelfConfig:
    """``weight``: share of the auxiliary loss in the total (0 = off, no head is built);
    ``hidden``: width of the head's hidden layer."""

    weight: float = 0.0
    hidden: int = 256

    def __post_init__(self) -> None:
        require(self.weight >= 0, "augself.weight", self.weight, "must be >= 0 (0 = off)")
        require(self.hidden >= 1, "augself.hidden", self.hidden, "must be >= 1")


def target_columns(cfg: AugmentConfig) -> tuple[Tensor, Tensor]:
    """``(columns, scales)``: indices into ``PARAM_NAMES`` of the columns that can vary under
    ``cfg`` and their scales (``hi - lo``), both ``(C,)``."""
    lo, hi = param_ranges(cfg)
    columns = (hi > lo).nonzero().squeeze(1)
    return columns, (hi - lo)[columns]


def difference_targets(params: Tensor, columns: Tensor, scales: Tensor) -> Tensor:
    """``params`` ``(2B, P)`` (view a rows, then view b) -> ``(B, C)``: ``(a - b) / scales``
    on ``columns``, so each target is in ``[-1, 1]``."""
    p_a, p_b = params.float().chunk(2)
    return (p_a - p_b)[:, columns] / scales


def augself_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over examples and columns (float32)."""
    return F.mse_loss(pred.float(), target.float())


class AugSelfHead(nn.Module):
    """MLP ``cat(h_a, h_b)`` ``(B, 2 * dim)`` -> ``(B, C)`` predicted parameter differences.

    ``forward(h, params)``: ``h`` ``(2B, dim)`` pooled encoder outputs, ``params`` ``(2B, P)``
    applied parameters, both view a then view b -> scalar loss. Raises ``ConfigError`` naming
    ``augself.weight`` when no column can vary under the augment config.
    """

    def __init__(self, dim: int, cfg: AugmentConfig, hidden: int = 256) -> None:
        super().__init__()
        columns, scales = target_columns(cfg)
        if len(columns) == 0:
            raise ConfigError(
                "config key 'augself.weight' is > 0 but no augmentation parameter "
                "varies under the augment section (every p is 0)",
                hint="set augself.weight=0 or turn on some augmentations",
            )
        self.names = tuple(PARAM_NAMES[i] for i in columns.tolist())
        self.register_buffer("columns", columns, persistent=False)
        self.register_buffer("scales", scales, persistent=False)
        self.mlp = nn.Sequential(
            nn.Linear(2 * dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, len(columns))
        )

    def predict(self, h: Tensor) -> Tensor:
        """``h`` ``(2B, dim)`` -> predicted differences ``(B, C)``."""
        h_a, h_b = h.chunk(2)
        return self.mlp(torch.cat([h_a, h_b], dim=1))

    def forward(self, h: Tensor, params: Tensor) -> Tensor:
        target = difference_targets(params.to(h.device), self.columns, self.scales)
        return augself_loss(self.predict(h), target)


@contextmanager
def capture_pooled(encoder: nn.Module) -> Iterator[list[Tensor]]:
    """Within the block, record the encoder's pooled outputs ``(batch, dim)``: each call of
    ``encoder(x)`` (a forward hook) and each ``encoder.frames(x)`` (``(batch, dim, frames)``,
    mean-pooled over time; CPC calls only this). The yielded list fills in call order."""
    seen: list[Tensor] = []
    handle = encoder.register_forward_hook(lambda _m, _i, out: seen.append(out))
    frames = encoder.frames

    def pooled_frames(*args: Any, **kwargs: Any) -> Tensor:
        out = frames(*args, **kwargs)
        seen.append(out.mean(dim=2))
        return out

    encoder.frames = pooled_frames  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        handle.remove()
        del encoder.frames  # the class's method again
