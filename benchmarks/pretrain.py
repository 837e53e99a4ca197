"""Pretraining throughput: end to end (clip cache read + PairDataset + DataLoader workers +
BatchedAugment + training step) vs model-only (the same step on tensors already in memory).

Legs run interleaved in blocks (so load spikes on a shared machine hit all legs alike) and each
figure is batch / median step time over the timed steps: every block starts a fresh DataLoader
iterator and its first ``--skip`` steps are not timed (worker start-up, and batches prefetched
while another leg ran). Legs, for melcnn and samplecnn:

- model-only: the step (forward, loss, backward, clip, AdamW) on an in-memory batch;
- step + augment: the same with BatchedAugment on that batch (what the augmentation costs);
- end to end, ``data.augment_on=device``: augmentation in the step (the CUDA default);
- end to end, ``data.augment_on=workers`` (CPU default): BatchedAugment in DataLoader workers.

Target: end to end >= 90% of model-only.

    .venv/bin/python benchmarks/pretrain.py [--rounds 3] [--block 5] [--batch 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from audioclr.augment.batched import BatchedAugment
from audioclr.config import load_config, resolve_config_path
from audioclr.data.prepare import prepare_cache
from audioclr.ssl.config import PretrainConfig
from audioclr.ssl.data import AugmentCollate, StepBatchSampler, step_loader
from audioclr.ssl.module import PretrainModule
from audioclr.ssl.schedule import build_optimizer
from audioclr.ssl.train import pair_dataset

SR = 22050
CONFIGS = {"melcnn": "simclr_melcnn", "samplecnn": "simclr_samplecnn"}
LEGS = ("model-only", "step + augment", "end to end, augment on device",
        "end to end, augment in workers")


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


class Bench:
    """One encoder's module, optimizer, in-memory batch and real data path."""

    def __init__(self, name: str, cache: Path, args: argparse.Namespace) -> None:
        over = [f"data.cache={cache}", f"trainer.batch_size={args.batch}"]
        self.cfg = load_config(PretrainConfig, resolve_config_path(CONFIGS[name], "pretrain"),
                               over)
        torch.manual_seed(0)
        self.module = PretrainModule(self.cfg, SR)
        self.opt, _ = build_optimizer(self.module, self.cfg.optim, 10_000)
        self.g = torch.Generator().manual_seed(0)
        n = self.module.encoder.input_samples
        self.x = 0.1 * torch.randn(2 * args.batch, n, generator=self.g)
        self.dataset = pair_dataset(self.cfg, n, SR)
        self.args, self.step = args, 0

    def train_step(self, x: torch.Tensor) -> None:
        loss, _ = self.module.compute_loss(x, self.g)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.cfg.optim.grad_clip)
        self.opt.step()

    def batches(self, in_workers: bool) -> Iterator:
        a = self.args
        sampler = StepBatchSampler(len(self.dataset), a.batch, 0, self.step, self.step + a.block)
        self.step += a.block
        aug = BatchedAugment(self.cfg.augment, SR) if in_workers else None
        collate = AugmentCollate(aug, 0, 0)
        return iter(step_loader(self.dataset, sampler, a.workers, collate=collate))

    def block(self, leg: str) -> list[float]:
        """Step times of one block of ``leg`` (first ``skip`` left out)."""
        times = []
        loader = self.batches(in_workers=leg.endswith("workers")) if "end" in leg else None
        for _ in range(self.args.block):
            t0 = time.perf_counter()
            if loader is not None:
                x = self.module.views(next(loader), self.g)  # augments unless done in workers
            elif leg == "step + augment":
                x = self.module.augment(self.x, self.g)
            else:
                x = self.x
            self.train_step(x)
            times.append(time.perf_counter() - t0)
        return times[self.args.skip :]


def bench(name: str, cache: Path, args: argparse.Namespace) -> None:
    b = Bench(name, cache, args)
    b.train_step(b.x)  # warm-up
    times: dict[str, list[float]] = {leg: [] for leg in LEGS}
    for _ in range(args.rounds):
        for leg in LEGS:
            times[leg] += b.block(leg)
    rate = {leg: args.batch / float(np.median(t)) for leg, t in times.items()}
    model = rate["model-only"]
    print(f"{name}: clips/s, batch {args.batch}, {len(times['model-only'])} timed steps per leg")
    for leg in LEGS:
        print(f"  {leg:32s} {rate[leg]:8.2f}  ({rate[leg] / model:6.1%} of model-only)")
    print(f"  end to end (device) vs step + augment: "
          f"{rate[LEGS[2]] / rate[LEGS[1]]:6.1%}  (data-path overhead alone)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--block", type=int, default=5)
    ap.add_argument("--skip", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--encoders", default="melcnn,samplecnn")
    args = ap.parse_args()
    print(f"torch threads {torch.get_num_threads()}, DataLoader workers {args.workers}, CPU; "
          f"{args.rounds} rounds of {args.block}-step blocks per leg, first {args.skip} untimed")
    with tempfile.TemporaryDirectory() as tmp:
        cache = make_cache(Path(tmp))
        for name in args.encoders.split(","):
            bench(name, cache, args)


if __name__ == "__main__":
    main()
