"""The LightningModule of pretraining: an encoder trained by one objective of ``OBJECTIVES``.

The training step reads top to bottom: per-step generator -> views augmented on the device ->
objective loss (under the Trainer's autocast) -> non-finite guard -> backward -> clip -> step ->
objective after-step hook (e.g. BYOL's teacher update) -> schedule -> log. Manual optimization
keeps that order visible and lets the guard skip a step on every rank together. What the
method is (heads, loss, logged figures, teacher) lives in ``audioclr.ssl.objectives``. With
metadata positives the batch's group ids go to objectives that take them (SimCLR's
multi-positive loss). With
``augself.weight > 0`` the loss gains ``weight *`` the AugSelf auxiliary loss
(``audioclr.ssl.augself``) on the encoder outputs captured while the objective ran and the
parameters each view received.

Example:
    >>> module = PretrainModule(cfg, sample_rate=22050)
    >>> trainer.fit(module, train_dataloaders=loader)
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import partial
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from audioclr import __version__
from audioclr.augment.batched import BatchedAugment, SpecAugment
from audioclr.config import config_to_dict
from audioclr.errors import AudioclrError
from audioclr.ssl.augself import AugSelfHead, capture_pooled
from audioclr.ssl.base import FrontTransform
from audioclr.ssl.checkpoint import CHECKPOINT_VERSION, rename_legacy_keys
from audioclr.ssl.config import PretrainConfig
from audioclr.ssl.data import step_seed
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.objectives import build_objective
from audioclr.ssl.schedule import build_optimizer
from audioclr.ssl.views import make_views


class PretrainModule(pl.LightningModule):
    """Encoder + the objective named by ``cfg.method``, trained on two views per clip."""

    def __init__(self, cfg: PretrainConfig, sample_rate: int) -> None:
        super().__init__()
        self.cfg, self.sample_rate = cfg, sample_rate
        self.automatic_optimization = False
        m = cfg.model
        self.encoder = build_encoder(m.encoder, sample_rate, **m.encoder_kwargs)
        self.augment = BatchedAugment(cfg.augment, sample_rate)
        masks = cfg.augment.time_mask.p > 0 or cfg.augment.freq_mask.p > 0
        use_spec = m.spec_augment and masks and m.encoder == "melcnn"
        self.spec_augment = (
            SpecAugment(cfg.augment.time_mask, cfg.augment.freq_mask) if use_spec else None
        )
        self.objective = build_objective(cfg.method, self.encoder, cfg.objective)
        self.augself = (
            AugSelfHead(self.encoder.output_dim, cfg.augment, cfg.augself.hidden)
            if cfg.augself.weight > 0
            else None
        )
        self.bad_steps = 0

    # ---- the step -------------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        opt, sched = self.optimizers(), self.lr_schedulers()
        step = self.global_step
        g = torch.Generator(device=self.device)
        g.manual_seed(step_seed(self.cfg.trainer.seed, step, self.global_rank))
        x, params = self.views(batch, g)
        front = partial(self.spec_augment, generator=g) if self.spec_augment is not None else None
        with capture_pooled(self.encoder) if self.augself is not None else nullcontext([]) as seen:
            loss, stats = self.objective.loss(self.encoder, x, front, g, **self.group_ids(batch))
        if self.augself is not None:
            aux = self.augself_loss(seen, x, front, params)
            loss = loss + self.cfg.augself.weight * aux
            stats = {**stats, "augself_loss": aux.detach()}
        finite = bool(torch.isfinite(loss.detach()).item())
        if not self.trainer.strategy.reduce_boolean_decision(finite, all=True):
            return self.skip_step(loss)
        self.bad_steps = 0
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.cfg.optim.grad_clip > 0:
            self.clip_gradients(
                opt, gradient_clip_val=self.cfg.optim.grad_clip, gradient_clip_algorithm="norm"
            )
        opt.step()
        self.objective.after_step(self.encoder, step, self.cfg.trainer.max_steps)
        sched.step()
        self.log_step(loss.detach(), stats, sched.get_last_lr()[0])
        return loss.detach()

    def views(self, batch: Any, g: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """``(view_a, view_b, idx[, augmented[, params]])`` -> augmented ``(V * batch, samples)``
        on the device (already augmented in the DataLoader when ``data.augment_on`` says so) and
        the parameters each view received ``(V * batch, P)`` (None if the workers sent none).
        ``V = 2`` plus one key view per group of the objective (LooC; ``ssl/views.py``); an
        augmented ``view_b`` then carries view b's rows followed by the key views'."""
        view_a, view_b = batch[0], batch[1]
        done = len(batch) > 3 and bool(batch[3])
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            if not done:
                a, b = (v.to(self.device, torch.float32, non_blocking=True) for v in batch[:2])
                return make_views(self.augment, a, b, g, self.objective.groups)
            x = torch.cat([view_a, view_b]).to(self.device, torch.float32, non_blocking=True)
            params = batch[4].to(self.device) if len(batch) > 4 and batch[4] is not None else None
            return x, params

    def group_ids(self, batch: Any) -> dict[str, Tensor]:
        """``{"group_ids": (batch, width)}`` for an objective whose loss takes them (metadata
        positives: the 6th entry of the batch, ``AugmentCollate(group_ids=True)``), else ``{}``."""
        if len(batch) < 6 or self.objective.positives != "multi":
            return {}
        return {"group_ids": batch[5].to(self.device)}

    def augself_loss(
        self, seen: list[Tensor], x: Tensor, front: FrontTransform | None, params: Tensor | None
    ) -> Tensor:
        """The AugSelf loss on the pooled encoder outputs of ``x`` captured during the objective
        (the first capture of the whole batch; one more encoder pass only if there was none)."""
        assert self.augself is not None
        if params is None:
            raise AudioclrError(
                "augself.weight > 0 but the batch carries no augmentation parameters",
                hint="build AugmentCollate with params=True",
            )
        shape = (x.shape[0], self.encoder.output_dim)
        h = next((s for s in seen if tuple(s.shape) == shape), None)
        h = self.encoder(x, front) if h is None else h
        pair = 2 * x.shape[0] // (2 + len(self.objective.groups))  # views a and b only
        return self.augself(h[:pair], params[:pair])

    def skip_step(self, loss: Tensor) -> None:
        """Non-finite loss on some rank: skip the update everywhere; give up after too many."""
        self.bad_steps += 1
        self.print(
            f"step {self.global_step}: non-finite loss {loss.item()}, update skipped "
            f"({self.bad_steps}/{self.cfg.trainer.max_bad_steps})"
        )
        if self.bad_steps >= self.cfg.trainer.max_bad_steps:
            raise AudioclrError(
                f"training diverged: {self.bad_steps} non-finite losses in a row at step "
                f"{self.global_step}",
                hint="lower optim.lr, raise optim.warmup_steps, or use "
                "trainer.precision=32; resume from the last checkpoint with --resume",
            )
        return None

    def log_step(self, loss: Tensor, stats: dict[str, Tensor], lr: float) -> None:
        """``train/loss``, ``train/lr`` and every figure the objective reported."""
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/lr", lr)
        for key, value in stats.items():
            self.log(f"train/{key}", value, prog_bar=key == "pos_acc")

    # ---- optimizer and checkpoint contract -----------------------------------------------
    def configure_optimizers(self) -> Any:
        opt, sched = build_optimizer(self, self.cfg.optim, self.cfg.trainer.max_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["audioclr"] = {
            "format_version": CHECKPOINT_VERSION,
            "encoder": self.cfg.model.encoder,
            "encoder_kwargs": dict(self.encoder.kwargs),
            "sample_rate": self.sample_rate,
            "config": config_to_dict(self.cfg),
            "code_version": __version__,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"] = rename_legacy_keys(checkpoint["state_dict"])
