"""Views per second of the augmentation chain: plain audiomentations vs ``BatchedAugment``, like
for like (the same clips, the same total work, the same number of cores).

Paths, each timed once per round, in turn, for ``--repeats`` rounds (after a warm-up round), so a
load spike on shared cores hits all of them alike; each keeps its best and its median round:

- plain audiomentations ``Compose`` per example (delay and an IR reverb via ``Lambda`` with
  numpy/scipy, since it has neither), pitch by its default ``PitchShift`` method (signalsmith,
  C++), in a pool of N single-threaded worker processes, N = torch's thread count; also in this
  one process, and in N processes with ``librosa_phase_vocoder`` (a phase vocoder, like ``stft``);
- ``BatchedAugment`` on CPU (torch, whole batch): the default config (``grain`` pitch) on N
  threads (the headline) and on 1 thread; one setting changed at a time on N threads
  (``reverb.irs_per_batch=0``, also on 1 thread; ``pitch.method=stft``); and the batch split over
  N single-threaded processes, as ``data.augment_on=workers`` runs it in DataLoader workers.

The headline is N threads (batched) vs N processes (plain). Then a per-stage breakdown of both
chains (ms per view; the batched one on 1 and on N threads, stages timed by wrapping the functions
``BatchedAugment`` calls) and, with ``--fft``, the per-row cost of the FFT sizes the chain uses.

Usage:
    .venv/bin/python benchmarks/augment.py [--batch 64] [--seconds 2.7] [--sample-rate 22050]
        [--repeats 7] [--fft] [--cuda]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import audiomentations as am
import numpy as np
import torch
from scipy.signal import fftconvolve

from audioclr.augment import batched as B
from audioclr.augment import functional as F
from audioclr.augment import spectral as S
from audioclr.augment.config import AugmentConfig
from audioclr.config import load_config
from audioclr.machine import cpu_model

VARIANTS = ("reverb.irs_per_batch=0", "pitch.method=stft")


def machine(threads: int) -> str:
    """One line: CPU, cores, torch and its CPU FFT backend, threads, load."""
    fft = "MKL" if torch.backends.mkl.is_available() else "pocketfft"
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (
        f"{cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__} (CPU FFT: {fft}), "
        f"{threads} threads; load average {load}"
    )


def plain_chain(
    cfg: AugmentConfig, sr: int, seed: int, pitch_method: str = "signalsmith_stretch"
) -> am.Compose:
    """The CLMR chain from stock audiomentations (global RNG, as users usually write it)."""
    rng = np.random.default_rng(seed)
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


def make_clips(batch: int, seconds: float, sr: int) -> np.ndarray:
    """``(batch, samples)`` float32 noise (the chain's cost does not depend on the content)."""
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal((batch, int(seconds * sr)))).astype(np.float32)


# --- worker processes: each single-threaded, each given its share of the clips once -----------
_WORKER: dict[str, Any] = {}


def _init_worker(clips: np.ndarray, workers: int, sr: int, kind: str) -> None:
    torch.set_num_threads(1)
    cfg, seed = AugmentConfig(), 0
    _WORKER.update(clips=clips, workers=workers, sr=sr, kind=kind)
    if kind == "batched":
        _WORKER["aug"] = B.BatchedAugment(cfg, sr)
    else:
        _WORKER["chain"] = plain_chain(cfg, sr, seed, kind)


def _work(share: int) -> float:
    """Views of every ``workers``-th clip from ``share`` on; returns a number, not the views."""
    w = _WORKER
    clips = w["clips"][share :: w["workers"]]
    if w["kind"] == "batched":
        g = torch.Generator().manual_seed(share)
        return float(w["aug"](torch.from_numpy(clips), g)[0, 0])
    seed_globals(share)
    return sum(float(w["chain"](c, w["sr"])[0]) for c in clips)


def seed_globals(seed: int) -> None:
    """audiomentations draws from the global RNGs: the same draws every round."""
    random.seed(seed)
    np.random.seed(seed)


def worker_pool(clips: np.ndarray, workers: int, sr: int, kind: str) -> Any:
    """``workers`` single-threaded processes (spawned, so no thread pool is inherited) holding
    the clips; ``kind``: ``batched`` or a plain ``PitchShift`` method."""
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # read at the child's start
    try:
        pool = mp.get_context("spawn").Pool(
            workers, _init_worker, (clips, workers, sr, kind), maxtasksperchild=None
        )
    finally:
        for k, v in env.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    pool.map(_work, range(workers), chunksize=1)  # every worker has started and warmed up
    return pool


def in_pool(pool: Any, workers: int) -> Callable[[], object]:
    """Every share once, one task each (idle workers take them: one each when both wait)."""
    return lambda: pool.map(_work, range(workers), chunksize=1)


Run = tuple[Callable[[], object], Callable[[], None] | None]


def interleaved(runs: dict[str, Run], rounds: int) -> dict[str, list[float]]:
    """Seconds of every round of each ``runs[name] = (run, setup)``, one warm-up round first;
    each round times every run once, in turn. ``setup`` (the thread count) runs before each."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(rounds + 1):
        for name, (run, setup) in runs.items():
            if setup is not None:
                setup()
            start = time.perf_counter()
            run()
            if round_:
                times[name].append(time.perf_counter() - start)
    return times


# --- per-stage timing --------------------------------------------------------------------------
BATCHED_STAGES = (  # (module, attribute, label); nested stages are indented
    (B.BatchedAugment, "sample_params", "draw parameters"),
    (F, "polarity_gain", "polarity + gain (one multiply)"),
    (F, "add_noise", "noise"),
    (F, "echoes", "delay (echoes)"),
    (S, "filter_shift", "filter + pitch FFT pass"),
    (S, "butterworth_response", "  filter response"),
    (S, "_synthesise", "  irfft per shift + read heads"),
    (S, "grain_stretch", "    read heads"),
    (F, "pitch_shift", "pitch (stft vocoder)"),
    (B.BatchedAugment, "_reverb", "reverb"),
    (F, "synthetic_ir", "  impulse responses"),
)


@contextmanager
def stage_timer(stages: tuple = BATCHED_STAGES) -> Iterator[dict[str, float]]:
    """Wrap each ``(module, attribute)`` so its seconds add up in the yielded dict; restored on
    exit. ``BatchedAugment`` looks these up at call time, so the wrapper sees every call."""
    spent: dict[str, float] = defaultdict(float)
    saved = [(mod, attr, getattr(mod, attr)) for mod, attr, _ in stages]

    def timed(fn: Callable, label: str) -> Callable:
        def inner(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - start

        return inner

    try:
        for (mod, attr, fn), (_, _, label) in zip(saved, stages, strict=True):
            setattr(mod, attr, timed(fn, label))
        yield spent
    finally:
        for mod, attr, fn in saved:
            setattr(mod, attr, fn)


class TimedTransform:
    """An audiomentations transform whose calls add their seconds to ``spent[label]``."""

    def __init__(self, transform: Any, label: str, spent: dict[str, float]) -> None:
        self.transform, self.label, self.spent = transform, label, spent

    def __call__(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        start = time.perf_counter()
        y = self.transform(samples, sample_rate)
        self.spent[self.label] += time.perf_counter() - start
        return y

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transform, name)


def plain_stages(cfg: AugmentConfig, clips: np.ndarray, sr: int, rounds: int) -> dict[str, float]:
    """ms per view of each transform of the plain chain (one process), best of ``rounds``."""
    labels = (
        "polarity",
        "noise",
        "gain",
        "filter (sosfilt)",
        "delay",
        "pitch (signalsmith)",
        "reverb (fftconvolve)",
    )
    best: dict[str, float] = dict.fromkeys(labels, math.inf)
    for _ in range(rounds):
        spent: dict[str, float] = defaultdict(float)
        chain = plain_chain(cfg, sr, 0)
        chain.transforms = [
            TimedTransform(t, label, spent)
            for t, label in zip(chain.transforms, labels, strict=True)
        ]
        seed_globals(0)
        for c in clips:
            chain(c, sr)
        for label in labels:
            best[label] = min(best[label], spent[label] / len(clips) * 1e3)
    return best


def batched_stages(
    aug: B.BatchedAugment, x: torch.Tensor, threads: tuple[int, ...], rounds: int
) -> dict[int, dict[str, float]]:
    """ms per view of each stage on each thread count (rounds interleaved), best round each."""
    best: dict[int, dict[str, float]] = {n: defaultdict(lambda: math.inf) for n in threads}
    for round_ in range(rounds + 1):
        for n in threads:
            torch.set_num_threads(n)
            with stage_timer() as spent:
                start = time.perf_counter()
                aug(x, torch.Generator().manual_seed(0))
                spent["whole chain"] = time.perf_counter() - start
            if round_:
                for label, seconds in spent.items():
                    best[n][label] = min(best[n][label], seconds / len(x) * 1e3)
    return best


def fft_table(n: int, grid: tuple[float, ...], sr: int, rounds: int) -> None:
    """Per-row cost (1 thread) of the analysis FFT and each synthesis size of ``fft_plan``."""
    torch.set_num_threads(1)
    n1, n2s = S.fft_plan(n + S.FILTER_PAD, grid)
    x = torch.randn(16, n1)
    spec = torch.fft.rfft(x)

    def per_row(fn: Callable[[], object], rows: int) -> float:
        fn()
        return min(_seconds(fn) for _ in range(rounds)) / rows * 1e6

    print(f"\nFFT sizes of the grain pass for {n} samples (us per row, 1 thread):")
    print(f"  analysis rfft {n1} = {_factors(n1)}: {per_row(lambda: torch.fft.rfft(x), 16):.0f}")
    for st, n2 in n2s.items():
        err = 12 * math.log2(n1 / n2) - st
        cost = per_row(lambda n2=n2: torch.fft.irfft(spec[:4], n=n2), 4)
        print(
            f"  {st:+5.1f} st: irfft {n2:6d} = {_factors(n2):28s} {cost:5.0f}  "
            f"(pitch error {err:+.3f} st)"
        )
    size = F.fast_fft_size(n + math.ceil(AugmentConfig().reverb.max_rt60_s * sr) - 1)
    xr = torch.randn(16, n)
    print(
        f"  reverb rfft {size} = {_factors(size)}: "
        f"{per_row(lambda: torch.fft.rfft(xr, n=size), 16):.0f}"
    )


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _factors(n: int) -> str:
    out, k = [], n
    for p in range(2, 100):
        e = 0
        while k % p == 0:
            k, e = k // p, e + 1
        if e:
            out.append(f"{p}^{e}" if e > 1 else str(p))
    return " ".join(out + ([str(k)] if k > 1 else []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=2.7)
    parser.add_argument("--sample-rate", type=int, default=22050)
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds")
    parser.add_argument("--fft", action="store_true", help="also time the FFT sizes used")
    parser.add_argument("--cuda", action="store_true", help="also time the batched path on CUDA")
    args = parser.parse_args()
    sr, cfg, n = args.sample_rate, AugmentConfig(), args.batch
    threads = torch.get_num_threads()
    clips = make_clips(n, args.seconds, sr)
    x = torch.from_numpy(clips)

    def g() -> torch.Generator:  # the same draws in every round and path: the same work
        return torch.Generator().manual_seed(0)

    print(machine(threads))
    print(
        f"{n} clips of {args.seconds} s at {sr} Hz; {args.repeats} interleaved rounds; "
        f"N = {threads} (torch threads = worker processes)"
    )

    def use(count: int) -> Callable[[], None]:
        return lambda: torch.set_num_threads(count)

    aug = B.BatchedAugment(cfg, sr)
    plain1 = plain_chain(cfg, sr, 0)
    pools = {
        kind: worker_pool(clips, threads, sr, kind)
        for kind in ("signalsmith_stretch", "librosa_phase_vocoder", "batched")
    }
    N = threads
    runs: dict[str, Run] = {
        f"plain, {N} processes, signalsmith pitch": (
            in_pool(pools["signalsmith_stretch"], N),
            None,
        ),
        "plain, 1 process, signalsmith pitch": (
            lambda: (seed_globals(0), [plain1(c, sr) for c in clips]),
            None,
        ),
        f"plain, {N} processes, librosa vocoder pitch": (
            in_pool(pools["librosa_phase_vocoder"], N),
            None,
        ),
        f"batched, {N} threads, grain pitch": (lambda: aug(x, g()), use(N)),
        "batched, 1 thread, grain pitch": (lambda: aug(x, g()), use(1)),
    }
    for override in VARIANTS:
        variant = B.BatchedAugment(load_config(AugmentConfig, None, [override]), sr)
        pitch = "stft" if "stft" in override else "grain"
        runs[f"batched, {N} threads, {pitch} pitch, {override}"] = (
            lambda a=variant: a(x, g()),
            use(N),
        )
    shared0 = B.BatchedAugment(load_config(AugmentConfig, None, [VARIANTS[0]]), sr)
    runs[f"batched, 1 thread, grain pitch, {VARIANTS[0]}"] = (lambda: shared0(x, g()), use(1))
    runs[f"batched, {N} x 1-thread processes, grain pitch"] = (in_pool(pools["batched"], N), None)
    if args.cuda and torch.cuda.is_available():
        xc, gc = x.cuda(), torch.Generator(device="cuda").manual_seed(0)

        def on_cuda() -> None:
            aug(xc, gc)
            torch.cuda.synchronize()

        runs["batched, cuda, grain pitch"] = (on_cuda, None)
    times = interleaved(runs, args.repeats)
    for pool in pools.values():
        pool.terminate()
    torch.set_num_threads(threads)
    rate = {name: n / min(t) for name, t in times.items()}
    print(f"\n{'views/s':>60} {'best':>8} {'median':>8}")
    for name, t in times.items():
        print(f"{name:>60} {n / min(t):8.1f} {n / statistics.median(t):8.1f}")
    base = f"plain, {N} processes, signalsmith pitch"
    print(f"\nratios to '{base}' (best rounds):")
    for name in rate:
        if name.startswith("batched"):
            print(f"  {name:58s} {rate[name] / rate[base]:5.1f}x")
    head = f"batched, {N} threads, grain pitch"
    print(
        f"\nlike for like: BatchedAugment (grain pitch) on {N} torch threads makes "
        f"{rate[head] / rate[base]:.1f}x the views/s of plain audiomentations (signalsmith "
        f"pitch) in {N} single-threaded processes: same {n} clips, same chain, {N} cores "
        f"[{cpu_model()}, torch {torch.__version__}]"
    )

    print("\nper stage, ms per view (best of the rounds; batched stages nest):")
    stages = batched_stages(aug, x, tuple(sorted({1, N})), args.repeats)
    head_cols = "".join(f"{f'{k} thread' + ('s' if k > 1 else ''):>11}" for k in stages)
    print(f"  {'batched stage':40s}{head_cols}")
    for label in ["whole chain", *(lbl for _, _, lbl in BATCHED_STAGES)]:
        if all(label in s for s in stages.values()):
            print(f"  {label:40s}" + "".join(f"{s[label]:11.3f}" for s in stages.values()))
    plain = plain_stages(cfg, clips, sr, max(2, args.repeats // 2))
    print(f"  {'plain stage (1 process)':40s}")
    for label, ms in plain.items():
        print(f"  {label:40s}{ms:11.3f}")
    print(f"  {'sum':40s}{sum(plain.values()):11.3f}")
    if args.fft:
        grid = tuple(aug.semitones.tolist())
        fft_table(clips.shape[1], grid, sr, args.repeats)
    print(f"\n[{machine(threads)}]")


if __name__ == "__main__":
    main()
