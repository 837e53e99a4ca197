"""Pretraining throughput inside the Lightning Trainer: end to end vs model-only, like for like.

Every leg is one ``audioclr.ssl.train.pretrain`` call (the product's Trainer, DataModule,
DataLoader and step) in this process, with the same config, batch and torch threads; a callback
records the wall time between consecutive ``on_train_batch_start`` calls, i.e. one step plus
any wait for the next batch. The first ``--warmup`` steps are not timed (default: the
DataLoader's queue, ``prefetch_factor`` 4 x workers, plus 4 steps, so the batches prefetched
while the Trainer started are used up and the queue is in steady state); the next ``--steps``
are. Legs, per encoder:

- model-only: batches from memory (the same crops every step, ``num_workers=0``), augmentation
  off (every ``p = 0``): the training step alone;
- step + augment: the same with ``BatchedAugment`` in the step (what augmentation costs there);
- end to end, augment in workers (``data.augment_on=workers``, the CPU default): clip cache +
  ``PairDataset`` + ``--workers`` DataLoader workers that also augment;
- end to end, augment on device (``data.augment_on=device``, the CUDA default): the same, with
  the augmentation in the step.

The legs run in turn, ``--rounds`` times (a load spike on shared cores then hits every leg; one
round of legs in a row once read 790 ms a step for model-only and 130 ms for the legs after it);
each figure is the batch over the median step time of all its timed steps (30 by default).
Target: end to end >= 90 % of model-only.

    .venv/bin/python benchmarks/pretrain.py [--steps 10] [--warmup N] [--rounds 3] [--batch 8]
        [--workers 2] [--encoders melcnn,samplecnn]

On 2 loaded cores of an Intel Xeon, melcnn takes about 4 minutes and samplecnn about 16.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import soundfile as sf
import torch

from audioclr.config import load_config, resolve_config_path
from audioclr.data.prepare import prepare_cache
from audioclr.machine import cpu_model
from audioclr.ssl.config import PretrainConfig
from audioclr.ssl.module import PretrainModule
from audioclr.ssl.train import pair_dataset, pretrain

SR = 22050
CONFIGS = {"melcnn": "simclr_melcnn", "samplecnn": "simclr_samplecnn"}
PREFETCH = 4  # prefetch_factor of audioclr.ssl.data.step_loader
NO_AUGMENT = [
    f"augment.{t}.p=0"
    for t in (
        "polarity",
        "noise",
        "gain",
        "filter",
        "delay",
        "pitch",
        "reverb",
        "background",
        "time_mask",
        "freq_mask",
    )
]
LEGS = {  # name -> (in-memory batches?, overrides)
    "model-only": (True, ["data.num_workers=0", "data.augment_on=device", *NO_AUGMENT]),
    "step + augment": (True, ["data.num_workers=0", "data.augment_on=device"]),
    "end to end, augment in workers": (False, ["data.augment_on=workers"]),
    "end to end, augment on device": (False, ["data.augment_on=device"]),
}


def make_cache(root: Path, tracks: int = 24, seconds: float = 8.0) -> Path:
    """A clip cache of ``tracks`` synthetic tones with noise."""
    rng = np.random.default_rng(0)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    t = np.arange(int(SR * seconds)) / SR
    for i in range(tracks):
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t)
        x += 0.05 * rng.standard_normal(t.size)
        sf.write(root / "audio" / f"t{i:03d}.wav", x.astype(np.float32), SR)
    prepare_cache(root / "audio", root / "cache", sample_rate=SR, workers=1, progress=False)
    return root / "cache"


class StepClock(pl.Callback):
    """Wall time between consecutive batch starts (a step plus the wait for the next batch),
    and of the step alone (batch start to batch end)."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.steps: list[float] = []

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self.starts.append(time.perf_counter())

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.steps.append(time.perf_counter() - self.starts[-1])

    def timed(self, warmup: int) -> tuple[list[float], list[float]]:
        """Periods and step times of the steps after ``warmup`` (each with a next start)."""
        periods = np.diff(self.starts).tolist()
        return periods[warmup:], self.steps[warmup : len(periods)]


class InMemoryPairs:
    """``2 * batch`` fixed crops held in memory: item ``i`` -> ``(a, b, i)`` of one batch."""

    def __init__(self, crops: torch.Tensor) -> None:
        self.a, self.b = crops.chunk(2)

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        return self.a[i], self.b[i], i

    def set_epoch(self, epoch: int) -> None:
        """Nothing to reshuffle."""


def leg_config(
    name: str,
    cache: Path,
    run_dir: Path,
    args: argparse.Namespace,
    max_steps: int,
    extra: list[str],
) -> PretrainConfig:
    over = [
        f"data.cache={cache}",
        f"trainer.batch_size={args.batch}",
        f"trainer.max_steps={max_steps}",
        f"trainer.checkpoint_every={10 * max_steps}",
        "trainer.progress=false",
        "trainer.accelerator=cpu",
        f"run.dir={run_dir}",
        f"data.num_workers={args.workers}",
        *extra,
    ]
    return load_config(PretrainConfig, resolve_config_path(CONFIGS[name], "pretrain"), over)


def in_memory(cfg: PretrainConfig, batch: int) -> InMemoryPairs:
    """One batch of real crops from the cache, kept in memory."""
    n = PretrainModule(cfg, SR).encoder.input_samples
    ds = pair_dataset(cfg, n, SR)
    ds.set_epoch(0)
    items = [ds[i % len(ds)] for i in range(batch)]
    return InMemoryPairs(
        torch.cat([torch.stack([it[0] for it in items]), torch.stack([it[1] for it in items])])
    )


def run_leg(
    name: str, leg: str, cache: Path, tmp: Path, args: argparse.Namespace
) -> tuple[list[float], list[float]]:
    memory, extra = LEGS[leg]
    clock = StepClock()
    run_dir = Path(tempfile.mkdtemp(dir=tmp))
    cfg = leg_config(name, cache, run_dir, args, args.warmup + args.steps + 1, extra)
    kwargs: dict[str, Any] = {}
    if memory:
        kwargs = {"dataset": in_memory(cfg, args.batch), "sample_rate": SR}
    pretrain(cfg, callbacks=[clock], **kwargs)
    return clock.timed(args.warmup)


def bench(name: str, cache: Path, tmp: Path, args: argparse.Namespace) -> None:
    periods: dict[str, list[float]] = {leg: [] for leg in LEGS}
    steps: dict[str, list[float]] = {leg: [] for leg in LEGS}
    for _ in range(args.rounds):
        for leg in LEGS:
            p, s = run_leg(name, leg, cache, tmp, args)
            periods[leg] += p
            steps[leg] += s
    rate = {leg: args.batch / statistics.median(t) for leg, t in periods.items()}
    model = rate["model-only"]
    print(
        f"\n{name}: clips/s (batch {args.batch}; {len(periods['model-only'])} timed steps per "
        f"leg after {args.warmup} warm-up steps, {args.rounds} round(s))"
    )
    print(f"  {'leg':34s} {'clips/s':>8} {'of model-only':>14} {'step ms':>8} {'wait ms':>8}")
    for leg in LEGS:
        step = 1e3 * statistics.median(steps[leg])
        wait = 1e3 * statistics.median(periods[leg]) - step
        print(f"  {leg:34s} {rate[leg]:8.2f} {rate[leg] / model:14.1%} {step:8.1f} {wait:8.1f}")
    e2e = rate["end to end, augment in workers"]
    print(
        f"  like for like: end to end (CPU default, augment in {args.workers} workers) makes "
        f"{e2e / model:.1%} of the model-only clips/s: same Trainer and step, batch "
        f"{args.batch}, {torch.get_num_threads()} torch threads in the training process "
        f"[{cpu_model()}, torch {torch.__version__}]",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10, help="timed steps per leg and round")
    ap.add_argument(
        "--warmup",
        type=int,
        default=None,
        help=f"untimed steps first (default {PREFETCH} x workers + 4)",
    )
    ap.add_argument("--rounds", type=int, default=3, help="rounds of all legs, in turn")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--encoders",
        default="melcnn",
        help="melcnn (about 4 min on 2 loaded cores), samplecnn (about 20 min)",
    )
    args = ap.parse_args()
    if args.warmup is None:
        args.warmup = PREFETCH * args.workers + 4
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"{cpu_model()}, {os.cpu_count()} cores, load average {load}; torch {torch.__version__},"
        f" {torch.get_num_threads()} threads in the training process, DataLoader workers "
        f"{args.workers} (1 thread each); {args.warmup} warm-up + {args.steps} timed steps "
        f"per leg and round, {args.rounds} rounds"
    )
    with tempfile.TemporaryDirectory() as tmp:
        cache = make_cache(Path(tmp))
        for name in args.encoders.split(","):
            bench(name, cache, Path(tmp), args)


if __name__ == "__main__":
    main()
