"""Lightning callbacks of a pretraining run: atomic checkpoints and a schedule on a time budget.

``StepCheckpoint``: ``step-XXXXXXXX.ckpt`` every ``every`` steps, and ``last.ckpt`` then, at the
end of training (``max_steps`` or ``max_minutes``) and on Ctrl-C, so ``--resume`` always finds
the latest state. The files go through the Trainer's ``AtomicCheckpointIO`` (temp name, then
rename). ``TimeBudgetSchedule``: the learning-rate cosine follows the time budget when that
ends the run before ``max_steps``.

Example:
    >>> trainer = pl.Trainer(callbacks=[StepCheckpoint("runs/x/checkpoints", every=500)])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Timer

from audioclr.ssl.checkpoint import LAST
from audioclr.ssl.schedule import WarmupCosine


class StepCheckpoint(pl.Callback):
    """``step-N.ckpt`` every ``every`` steps; ``last.ckpt`` with each of them and at the end."""

    def __init__(self, dirpath: str | Path, every: int) -> None:
        self.dirpath, self.every = Path(dirpath), every
        self._last_saved = -1

    def _save(self, trainer: pl.Trainer, periodic: bool) -> None:
        step = trainer.global_step
        if step == self._last_saved:
            return
        if periodic:
            trainer.save_checkpoint(self.dirpath / f"step-{step:08d}.ckpt", weights_only=False)
        trainer.save_checkpoint(self.dirpath / LAST, weights_only=False)
        self._last_saved = step

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_saved = trainer.global_step  # resumed: that state is on disk already

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if trainer.global_step > 0 and trainer.global_step % self.every == 0:
            self._save(trainer, periodic=True)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer, periodic=False)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, KeyboardInterrupt) and trainer.world_size == 1:
            self._save(trainer, periodic=False)


class TimeBudgetSchedule(pl.Callback):
    """Before each step, tell every ``WarmupCosine`` the share of ``max_time`` spent (rank 0's
    clock, broadcast so every rank steps with the same learning rate). Lightning's ``Timer``
    keeps the time of a resumed run, so the share carries over ``--resume``."""

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        left = None if timer is None else timer.time_remaining("train")
        if timer is None or left is None:
            return
        elapsed = timer.time_elapsed("train")
        share = trainer.strategy.broadcast(elapsed / max(elapsed + left, 1e-9))
        for config in trainer.lr_scheduler_configs:
            for schedule in getattr(config.scheduler, "lr_lambdas", []):
                if isinstance(schedule, WarmupCosine):
                    schedule.time_progress = float(share)
