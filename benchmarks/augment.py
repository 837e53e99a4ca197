"""Views per second of the full augmentation chain, three ways, side by side on the same cores.

1. plain audiomentations ``Compose`` (its transforms; delay and an IR reverb via ``Lambda`` with
   numpy/scipy, since it has neither a delay nor an IR-free reverb), per example; once with its
   default ``PitchShift`` method (signalsmith, C++) and once with ``librosa_phase_vocoder``;
2. our ``CPUAugment`` (audiomentations + our transforms, seeded), per example;
3. our ``BatchedAugment`` on CPU (torch, whole batch): the default config (``grain`` pitch,
   8 reverb responses per batch) with default threads and with 1 thread, then one setting
   changed at a time: one reverb response per example, the STFT vocoder pitch; on CUDA too
   when available.

The target (the batched path >= 10x the plain chain) is read on the default config. Every path
is timed once per round, in turn, for ``--repeats`` rounds, and keeps its best round: a load
spike on shared cores then hits all paths alike.

Usage:
    .venv/bin/python benchmarks/augment.py [--batch 64] [--seconds 2.7] [--sample-rate 22050]
        [--repeats 7]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import audiomentations as am
import numpy as np
import torch
from scipy.signal import fftconvolve

from audioclr.augment.batched import BatchedAugment
from audioclr.augment.config import AugmentConfig
from audioclr.augment.cpu import CPUAugment
from audioclr.config import load_config


def plain_chain(
    cfg: AugmentConfig, sr: int, rng: np.random.Generator, pitch_method: str = "signalsmith_stretch"
) -> am.Compose:
    """The CLMR chain from stock audiomentations (global RNG, as users usually write it)."""
    irs = []
    for rt60 in np.linspace(cfg.reverb.min_rt60_s, cfg.reverb.max_rt60_s, 8):
        t = np.arange(int(cfg.reverb.max_rt60_s * sr)) / sr
        ir = rng.standard_normal(len(t)) * np.exp(-math.log(1000.0) * t / rt60)
        irs.append((ir / np.linalg.norm(ir)).astype(np.float32))

    def delay(x: np.ndarray, sample_rate: int) -> np.ndarray:
        d = int(
            np.random.uniform(cfg.delay.min_delay_ms, cfg.delay.max_delay_ms) * sample_rate / 1000
        )
        v = np.random.uniform(cfg.delay.min_volume, cfg.delay.max_volume)
        y = x.copy()
        for k in range(1, cfg.delay.echoes + 1):
            y[k * d :] += v**k * x[: len(x) - k * d]
        return y / (1 + sum(v**k for k in range(1, cfg.delay.echoes + 1)))

    def reverb(x: np.ndarray, sample_rate: int) -> np.ndarray:
        wet = np.random.uniform(cfg.reverb.min_wet, cfg.reverb.max_wet)
        ir = irs[np.random.randint(len(irs))]
        return ((1 - wet) * x + wet * fftconvolve(x, ir)[: len(x)]).astype(np.float32)

    f = cfg.filter
    return am.Compose(
        [
            am.PolarityInversion(p=cfg.polarity.p),
            am.AddGaussianSNR(
                min_snr_db=cfg.noise.min_snr_db, max_snr_db=cfg.noise.max_snr_db, p=cfg.noise.p
            ),
            am.Gain(
                min_gain_db=cfg.gain.min_gain_db, max_gain_db=cfg.gain.max_gain_db, p=cfg.gain.p
            ),
            am.OneOf(
                [
                    am.HighPassFilter(
                        min_cutoff_freq=f.min_highpass_hz, max_cutoff_freq=f.max_highpass_hz, p=1.0
                    ),
                    am.LowPassFilter(
                        min_cutoff_freq=f.min_lowpass_hz, max_cutoff_freq=f.max_lowpass_hz, p=1.0
                    ),
                ],
                p=f.p,
            ),
            am.Lambda(transform=delay, p=cfg.delay.p),
            am.PitchShift(
                min_semitones=cfg.pitch.min_semitones,
                max_semitones=cfg.pitch.max_semitones,
                method=pitch_method,
                p=cfg.pitch.p,
            ),
            am.Lambda(transform=reverb, p=cfg.reverb.p),
        ]
    )


def interleaved_rates(
    runs: dict[str, tuple[Callable[[], object], Callable[[], None] | None]],
    views: int,
    rounds: int,
) -> dict[str, float]:
    """Views/s of each ``runs[name] = (run, setup)``: best time over ``rounds`` rounds, each
    round timing every run once in turn (after one warm-up), so a load spike on the shared cores
    hits all of them alike. ``setup`` (e.g. the thread count) runs before each timing."""
    best = dict.fromkeys(runs, math.inf)
    for round_ in range(rounds + 1):
        for name, (run, setup) in runs.items():
            if setup is not None:
                setup()
            start = time.perf_counter()
            run()
            if round_:  # round 0 warms up
                best[name] = min(best[name], time.perf_counter() - start)
    return {name: views / t for name, t in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=2.7)
    parser.add_argument("--sample-rate", type=int, default=22050)
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (best is kept)")
    args = parser.parse_args()
    sr, cfg = args.sample_rate, AugmentConfig()
    rng = np.random.default_rng(0)
    clips = (0.1 * rng.standard_normal((args.batch, int(args.seconds * sr)))).astype(np.float32)
    plain, ours = plain_chain(cfg, sr, rng), CPUAugment(cfg, sr)
    variants = {"default": BatchedAugment(cfg, sr)}
    for override in ("reverb.irs_per_batch=0", "pitch.method=stft"):
        variants[override] = BatchedAugment(load_config(AugmentConfig, None, [override]), sr)
    x, g = torch.from_numpy(clips), torch.Generator().manual_seed(0)

    n, threads = args.batch, torch.get_num_threads()
    print(f"{n} clips of {args.seconds} s at {sr} Hz, torch threads {threads}")
    plain_librosa = plain_chain(cfg, sr, rng, pitch_method="librosa_phase_vocoder")

    def use(count: int) -> Callable[[], None]:
        return lambda: torch.set_num_threads(count)

    runs: dict[str, tuple[Callable[[], object], Callable[[], None] | None]] = {
        "plain audiomentations": (lambda: [plain(c, sr) for c in clips], None),
        "plain, librosa pitch": (lambda: [plain_librosa(c, sr) for c in clips], None),
        "CPUAugment": (lambda: [ours(c, rng) for c in clips], None),
    }
    for label, aug in variants.items():
        runs[f"BatchedAugment (cpu, {label})"] = (lambda a=aug: a(x, g), use(threads))
    # the plain chain runs on one core: the like-for-like figure
    runs["BatchedAugment (cpu, default, 1 thread)"] = (lambda: variants["default"](x, g), use(1))
    if torch.cuda.is_available():
        xc, gc = x.cuda(), torch.Generator(device="cuda").manual_seed(0)
        for label, aug in variants.items():

            def on_cuda(aug: BatchedAugment = aug) -> None:
                aug(xc, gc)
                torch.cuda.synchronize()

            runs[f"BatchedAugment (cuda, {label})"] = (on_cuda, None)
    rates = interleaved_rates(runs, n, args.repeats)
    torch.set_num_threads(threads)
    for name, rate in rates.items():
        print(f"{name:>46}: {rate:8.1f} views/s")
    plain_rate = rates["plain audiomentations"]
    for name in (name for name in rates if name.startswith("BatchedAugment")):
        target = " (target >= 10x)" if name == "BatchedAugment (cpu, default)" else ""
        print(f"{name} / plain audiomentations: {rates[name] / plain_rate:.1f}x{target}")


if __name__ == "__main__":
    main()
