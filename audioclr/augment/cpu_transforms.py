"""Our own per-example numpy transforms, for what audiomentations lacks or draws differently.

Each is audiomentations-shaped: ``p``, ``randomize(rng) -> params`` separate from
``apply(x, params)``; ``x`` is ``(samples,)`` float32. The maths match
:mod:`audioclr.augment.functional` (the batched path), so both paths give the same distribution.

Example:
    >>> d = Delay(DelayConfig(p=1.0), sample_rate=22050)
    >>> y = d.apply(x, d.randomize(np.random.default_rng(0)))
"""

from __future__ import annotations

import math
from typing import Any

import audiomentations as am
import numpy as np
from scipy.signal import fftconvolve

from audioclr.augment.config import DelayConfig, PitchConfig, ReverbConfig


def format_params(params: dict[str, Any]) -> str:
    """``{"gain_db": -3.21}`` -> ``"gain_db=-3.21"`` (floats to 3 significant digits)."""
    return ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


class HighOrLowPass:
    """``highpass`` (with probability ``highpass_share``) or else ``lowpass``, as one transform."""

    def __init__(self, highpass: Any, lowpass: Any, p: float, highpass_share: float) -> None:
        self.highpass, self.lowpass, self.p, self.share = highpass, lowpass, p, highpass_share

    def randomize(self, rng: np.random.Generator) -> dict[str, Any]:
        """Coin, kind, and the chosen filter's own parameters."""
        kind = "highpass" if rng.random() < self.share else "lowpass"
        inner = (self.highpass if kind == "highpass" else self.lowpass).randomize(rng)
        return {"active": bool(rng.random() < self.p), "kind": kind, "seed": inner["seed"]}

    def apply(self, x: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """Run the chosen filter; its drawn cutoff is added to ``params``."""
        inner = {"active": True, "seed": params["seed"]}
        y = (self.highpass if params["kind"] == "highpass" else self.lowpass).apply(x, inner)
        params["cutoff_hz"] = float(inner["cutoff_freq"])
        return y


class Delay:
    """Echoes ``(x + sum_k v^k x[n - k d]) / (1 + sum_k v^k)`` (see ``functional.delay``)."""

    def __init__(self, cfg: DelayConfig, sample_rate: int) -> None:
        self.cfg, self.p, self.sample_rate = cfg, cfg.p, sample_rate

    def randomize(self, rng: np.random.Generator) -> dict[str, Any]:
        c = self.cfg
        return {
            "active": bool(rng.random() < c.p),
            "delay_ms": float(rng.uniform(c.min_delay_ms, c.max_delay_ms)),
            "volume": float(rng.uniform(c.min_volume, c.max_volume)),
        }

    def apply(self, x: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        d = int(round(params["delay_ms"] * self.sample_rate / 1000.0))
        out, total = x.astype(np.float32), 1.0
        for k in range(1, self.cfg.echoes + 1):
            if k * d >= len(x):
                total += params["volume"] ** k
                continue
            echo = np.zeros_like(out)
            echo[k * d :] = x[: len(x) - k * d]
            out = out + np.float32(params["volume"] ** k) * echo
            total += params["volume"] ** k
        return out / np.float32(total)


class PitchShift:
    """audiomentations' ``PitchShift`` (signalsmith) with shifts drawn on the config's grid."""

    def __init__(self, cfg: PitchConfig, sample_rate: int) -> None:
        self.p, self.sample_rate = cfg.p, sample_rate
        steps = int(math.floor((cfg.max_semitones - cfg.min_semitones) / cfg.semitone_step + 1e-6))
        self.grid = cfg.min_semitones + cfg.semitone_step * np.arange(steps + 1)
        self.inner = am.PitchShift(
            min_semitones=cfg.min_semitones, max_semitones=cfg.max_semitones, p=1.0
        )

    def randomize(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"active": bool(rng.random() < self.p), "semitones": float(rng.choice(self.grid))}

    def apply(self, x: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        if params["semitones"] == 0:
            return x
        self.inner.parameters = {"should_apply": True, "num_semitones": params["semitones"]}
        return self.inner.apply(x, self.sample_rate)[: len(x)]


class Reverb:
    """Convolution with a synthetic exponentially decaying noise IR (see ``functional.reverb``)."""

    def __init__(self, cfg: ReverbConfig, sample_rate: int) -> None:
        self.cfg, self.p, self.sample_rate = cfg, cfg.p, sample_rate
        self.ir_samples = max(1, int(math.ceil(cfg.max_rt60_s * sample_rate)))

    def randomize(self, rng: np.random.Generator) -> dict[str, Any]:
        c = self.cfg
        return {
            "active": bool(rng.random() < c.p),
            "rt60_s": float(rng.uniform(c.min_rt60_s, c.max_rt60_s)),
            "wet": float(rng.uniform(c.min_wet, c.max_wet)),
            "seed": int(rng.integers(2**32)),
        }

    def impulse_response(self, rt60_s: float, length: int, rng: np.random.Generator) -> np.ndarray:
        """``(length,)`` white noise under ``exp(-6.91 t / rt60)``, first tap 1, unit energy."""
        t = np.arange(length) / self.sample_rate
        ir = rng.standard_normal(length) * np.exp(-math.log(1000.0) * t / rt60_s)
        ir[0] = 1.0
        return (ir / np.sqrt(np.sum(ir**2))).astype(np.float32)

    def apply(self, x: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        length = min(self.ir_samples, len(x))
        ir = self.impulse_response(params["rt60_s"], length, np.random.default_rng(params["seed"]))
        wet = fftconvolve(x, ir)[: len(x)]
        return ((1.0 - params["wet"]) * x + params["wet"] * wet).astype(np.float32)
