"""Lightning callbacks of a pretraining run: periodic + last checkpoints written atomically.

``step-XXXXXXXX.ckpt`` every ``every`` steps, and ``last.ckpt`` then, at the end of training
(``max_steps`` or ``max_minutes``) and on Ctrl-C, so ``--resume`` always finds the latest state.
The files go through the Trainer's ``AtomicCheckpointIO`` (temp name, then rename).

Example:
    >>> trainer = pl.Trainer(callbacks=[StepCheckpoint("runs/x/checkpoints", every=500)])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from audioclr.ssl.checkpoint import LAST


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

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step > 0 and trainer.global_step % self.every == 0:
            self._save(trainer, periodic=True)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer, periodic=False)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                     exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt) and trainer.world_size == 1:
            self._save(trainer, periodic=False)
