"""The per-example path: audiomentations transforms plus our own, on numpy, in DataLoader workers.

Same chain, order and parameter distributions as :class:`audioclr.augment.batched.BatchedAugment`.
audiomentations draws from the global ``random``/``np.random`` (its issues #288/#362), so
:class:`Seeded` seeds both from our generator right before each call and restores their state
afterwards: the same ``rng`` gives the same view in any worker, and user code's global RNG is
left as it was. Background mixing needs a batch and is done by the batched path only.

Example:
    >>> aug = CPUAugment(AugmentConfig(), sample_rate=22050)
    >>> view = aug(np.zeros(22050, np.float32), np.random.default_rng(0))   # (samples,) float32
"""

from __future__ import annotations

import random
import warnings
from typing import Any, Protocol

import audiomentations as am
import numpy as np

from audioclr.augment import cpu_transforms as own
from audioclr.augment.config import AugmentConfig


class Transform(Protocol):
    """What every CPU transform offers (audiomentations' contract, with an injected rng)."""

    p: float

    def randomize(self, rng: np.random.Generator) -> dict[str, Any]: ...
    def apply(self, x: np.ndarray, params: dict[str, Any]) -> np.ndarray: ...


class Seeded:
    """Run an audiomentations transform with its randomness drawn from our generator.

    Example:
        >>> t = Seeded(am.Gain(min_gain_db=-6, max_gain_db=-1), p=0.5, sample_rate=22050)
        >>> y = t.apply(x, t.randomize(np.random.default_rng(0)))
    """

    def __init__(
        self,
        transform: am.core.transforms_interface.BaseWaveformTransform,
        p: float,
        sample_rate: int,
    ) -> None:
        transform.p = 1.0  # the coin is ours
        self.transform, self.p, self.sample_rate = transform, p, sample_rate

    def randomize(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw the coin and a seed for the transform's own draws."""
        return {"active": bool(rng.random() < self.p), "seed": int(rng.integers(2**32))}

    def apply(self, x: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """Apply with global RNGs seeded from ``params['seed']``; their state is restored after."""
        if not params["active"]:
            return x
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            random.seed(params["seed"])
            np.random.seed(params["seed"])
            y = self.transform(x, sample_rate=self.sample_rate)
            params.update(
                {k: v for k, v in self.transform.parameters.items() if k != "should_apply"}
            )
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        return y


def build_chain(cfg: AugmentConfig, sample_rate: int) -> list[tuple[str, Transform]]:
    """The named CPU transforms in chain order (background mixing excluded)."""
    sr, f = sample_rate, cfg.filter
    rolloff = {
        "min_rolloff": f.rolloff_db_per_octave,
        "max_rolloff": f.rolloff_db_per_octave,
        "zero_phase": False,
    }
    return [
        ("polarity", Seeded(am.PolarityInversion(), cfg.polarity.p, sr)),
        (
            "noise",
            Seeded(
                am.AddGaussianSNR(min_snr_db=cfg.noise.min_snr_db, max_snr_db=cfg.noise.max_snr_db),
                cfg.noise.p,
                sr,
            ),
        ),
        (
            "gain",
            Seeded(
                am.Gain(min_gain_db=cfg.gain.min_gain_db, max_gain_db=cfg.gain.max_gain_db),
                cfg.gain.p,
                sr,
            ),
        ),
        (
            "filter",
            own.HighOrLowPass(
                Seeded(
                    am.HighPassFilter(
                        min_cutoff_freq=f.min_highpass_hz,
                        max_cutoff_freq=f.max_highpass_hz,
                        **rolloff,
                    ),
                    1.0,
                    sr,
                ),
                Seeded(
                    am.LowPassFilter(
                        min_cutoff_freq=f.min_lowpass_hz,
                        max_cutoff_freq=f.max_lowpass_hz,
                        **rolloff,
                    ),
                    1.0,
                    sr,
                ),
                p=f.p,
                highpass_share=f.highpass_share,
            ),
        ),
        ("delay", own.Delay(cfg.delay, sr)),
        ("pitch", own.PitchShift(cfg.pitch, sr)),
        ("reverb", own.Reverb(cfg.reverb, sr)),
    ]


class CPUAugment:
    """The augmentation chain on one clip ``(samples,)`` float32, seeded by a numpy generator."""

    def __init__(self, cfg: AugmentConfig, sample_rate: int) -> None:
        self.cfg, self.sample_rate = cfg, sample_rate
        self.chain = build_chain(cfg, sample_rate)
        if cfg.background.p > 0:
            warnings.warn(
                "augment.background mixes clips of a batch: only BatchedAugment applies it, "
                "CPUAugment leaves it out",
                stacklevel=2,
            )

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One view of ``x`` ``(samples,)``; same length, float32."""
        return self.run(x, rng)[0]

    def run(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
        """The view and the names (with parameters) of the transforms applied, in order."""
        y = np.ascontiguousarray(x, dtype=np.float32)
        applied = []
        for name, transform in self.chain:
            params = transform.randomize(rng)
            if params["active"]:
                y = np.asarray(transform.apply(y, params), dtype=np.float32)
                shown = {k: v for k, v in params.items() if k not in ("active", "seed")}
                applied.append(f"{name}({own.format_params(shown)})" if shown else name)
        return y, applied
