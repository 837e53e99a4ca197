"""Pretraining throughput: end to end (cache read + PairDataset + DataLoader + BatchedAugment +
step, through the real Trainer) vs model-only (the same step on tensors already in memory).

Prints clips/s for melcnn and samplecnn, in one run: the model-only step on tensors in memory,
the same step plus BatchedAugment (so augmentation cost is visible), end to end with the
augmentation on the training device (default) and with ``data.augment_in_workers=true``, and
the ratios (target: end to end >= 90% of model-only). Small step counts: a few minutes on CPU.

    .venv/bin/python benchmarks/pretrain.py [--steps 6] [--batch 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import soundfile as sf
import torch

from audioclr.config import load_config, resolve_config_path
from audioclr.data.prepare import prepare_cache
from audioclr.ssl.config import PretrainConfig
from audioclr.ssl.module import PretrainModule
from audioclr.ssl.schedule import build_optimizer
from audioclr.ssl.train import pretrain

SR = 22050
CONFIGS = {"melcnn": "simclr_melcnn", "samplecnn": "simclr_samplecnn"}


class StepClock(pl.Callback):
    """Wall time at the end of every step (the first ``warmup`` steps are not counted)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_end(self, *args, **kwargs) -> None:
        self.times.append(time.perf_counter())


def make_cache(root: Path, tracks: int = 24, seconds: float = 8.0) -> Path:
    rng = np.random.default_rng(0)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    t = np.arange(int(SR * seconds)) / SR
    for i in range(tracks):
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t)
        x += 0.05 * rng.standard_normal(t.size)
        sf.write(root / "audio" / f"t{i:03d}.wav", x.astype(np.float32), SR)
    prepare_cache(root / "audio", root / "cache", sample_rate=SR, workers=1, progress=False)
    return root / "cache"


def end_to_end(cfg: PretrainConfig, warmup: int) -> float:
    clock = StepClock()
    pretrain(cfg, callbacks=[clock])
    t = clock.times
    return cfg.trainer.batch_size * (len(t) - 1 - warmup) / (t[-1] - t[warmup])


def in_memory(cfg: PretrainConfig, warmup: int, augment: bool) -> float:
    """The training step alone on a batch already in memory (optionally with BatchedAugment)."""
    module = PretrainModule(cfg, SR)
    opt, _ = build_optimizer(module, cfg.optim, cfg.trainer.max_steps)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2 * cfg.trainer.batch_size, module.encoder.input_samples, generator=g) * 0.1
    times = []
    for _ in range(cfg.trainer.max_steps):
        views = module.augment(x, g) if augment else x
        loss, _ = module.compute_loss(views, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.optim.grad_clip)
        opt.step()
        times.append(time.perf_counter())
    return cfg.trainer.batch_size * (len(times) - 1 - warmup) / (times[-1] - times[warmup])


def bench(name: str, cache: Path, tmp: Path, args: argparse.Namespace) -> None:
    def cfg(tag: str, *extra: str) -> PretrainConfig:
        over = [f"data.cache={cache}", f"run.dir={tmp / f'run-{name}-{tag}'}",
                f"trainer.max_steps={args.steps}", f"trainer.batch_size={args.batch}",
                f"data.num_workers={args.workers}", "trainer.progress=false",
                "trainer.checkpoint_every=100000", *extra]
        return load_config(PretrainConfig, resolve_config_path(CONFIGS[name], "pretrain"), over)

    w = args.warmup
    model = in_memory(cfg("model"), w, augment=False)
    step_aug = in_memory(cfg("model-aug"), w, augment=True)
    e2e = end_to_end(cfg("e2e"), w)
    e2e_workers = end_to_end(cfg("e2e-workers", "data.augment_in_workers=true"), w)
    print(f"{name}: clips/s (batch {args.batch})\n"
          f"  model-only step, tensors in memory, no augmentation  {model:8.2f}\n"
          f"  step + BatchedAugment, tensors in memory             {step_aug:8.2f}"
          f"  ({step_aug / model:6.1%} of model-only)\n"
          f"  end to end, augment on device (default)              {e2e:8.2f}"
          f"  ({e2e / model:6.1%} of model-only, {e2e / step_aug:6.1%} of step+augment)\n"
          f"  end to end, data.augment_in_workers=true             {e2e_workers:8.2f}"
          f"  ({e2e_workers / model:6.1%} of model-only)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--encoders", default="melcnn,samplecnn")
    args = ap.parse_args()
    print(f"torch threads {torch.get_num_threads()}, batch {args.batch}, steps {args.steps} "
          f"(first {args.warmup} not timed), DataLoader workers {args.workers}, CPU")
    with tempfile.TemporaryDirectory() as tmp:
        cache = make_cache(Path(tmp))
        for name in args.encoders.split(","):
            bench(name, cache, Path(tmp), args)


if __name__ == "__main__":
    main()
