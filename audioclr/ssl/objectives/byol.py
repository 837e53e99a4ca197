"""BYOL (Grill et al., 2020): predict a momentum teacher's projection of the other view.

Student: encoder -> projection -> prediction. Teacher: a copy of encoder + projection, never
trained by gradients; after each optimizer step it moves toward the student,
``teacher = m * teacher + (1 - m) * student`` (lightly ``update_momentum``), with ``m`` on a
cosine from ``byol.momentum_base`` at step 0 to 1.0 at the last step (lightly
``cosine_schedule``). Loss: negative cosine similarity, symmetric in the two views. The teacher
is a submodule, so it is saved in checkpoints and ``--resume`` continues it exactly.

Example:
    >>> obj = BYOL(encoder, BYOLConfig(projection_hidden=64, projection_dim=32))
    >>> loss, stats = obj.loss(encoder, x, None, g)
    >>> loss.backward(); opt.step(); obj.after_step(encoder, step=0, max_steps=1000)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import Tensor

from audioclr.config import require, require_positive
from audioclr.ssl.base import Encoder, FrontTransform
from audioclr.ssl.objectives.base import Objective, fp32, pair_stats


@dataclass
class BYOLConfig:
    """Projection and prediction MLPs (lightly's BYOL heads) and the teacher's momentum."""

    projection_hidden: int = 1024
    projection_dim: int = 256
    prediction_hidden: int = 1024
    momentum_base: float = 0.99  # teacher momentum at step 0, raised to 1.0 on a cosine

    def __post_init__(self) -> None:
        require_positive("byol", self, "projection_hidden", "projection_dim", "prediction_hidden")
        require(
            0 <= self.momentum_base <= 1,
            "byol.momentum_base",
            self.momentum_base,
            "must be in [0, 1]",
        )


class BYOL(Objective):
    """Student (encoder, projection, prediction) vs a momentum teacher (encoder, projection)."""

    config = BYOLConfig
    positives = "pairs"  # no negatives: a pair from two tracks of a group is just a pair

    def __init__(self, encoder: Encoder, cfg: BYOLConfig) -> None:
        super().__init__()
        self.momentum_base = cfg.momentum_base
        self.projection = BYOLProjectionHead(
            encoder.output_dim, cfg.projection_hidden, cfg.projection_dim
        )
        self.prediction = BYOLPredictionHead(
            cfg.projection_dim, cfg.prediction_hidden, cfg.projection_dim
        )
        self.teacher_encoder = copy.deepcopy(encoder)
        self.teacher_projection = copy.deepcopy(self.projection)
        deactivate_requires_grad(self.teacher_encoder)
        deactivate_requires_grad(self.teacher_projection)
        self.criterion = NegativeCosineSimilarity()

    def loss(
        self, encoder: Encoder, x: Tensor, front: FrontTransform | None, g: torch.Generator
    ) -> tuple[Tensor, dict[str, Tensor]]:
        rewind = g.get_state()
        h = encoder(x, front)
        z = self.projection(h)
        p_a, p_b = self.prediction(z).chunk(2)
        g.set_state(rewind)  # the teacher sees the same SpecAugment masks as the student
        with torch.no_grad():
            t_a, t_b = self.teacher_projection(self.teacher_encoder(x, front)).chunk(2)
        with fp32(x):
            loss = 0.5 * (
                self.criterion(p_a.float(), t_b.float()) + self.criterion(p_b.float(), t_a.float())
            )
        return loss, pair_stats(z, h)

    def momentum(self, step: int, max_steps: int) -> float:
        """Teacher momentum at ``step``: cosine from ``momentum_base`` (step 0) to 1.0."""
        return cosine_schedule(step, max_steps, self.momentum_base, 1.0)

    @torch.no_grad()
    def after_step(self, encoder: Encoder, step: int, max_steps: int) -> None:
        m = self.momentum(step, max_steps)
        update_momentum(encoder, self.teacher_encoder, m)
        update_momentum(self.projection, self.teacher_projection, m)
