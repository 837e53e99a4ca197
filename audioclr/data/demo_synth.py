"""Instrument voices for the demo corpus: one note -> float32 samples, each with its own synthesis.

Every voice takes ``(freq, seconds, sample_rate, rng)`` and returns ``(samples,)`` float32 that
may ring past ``seconds`` (its release). Timbre parameters are drawn per track by
:func:`voice_params`, so tracks of one class vary without losing their family sound.

Example:
    >>> rng = np.random.default_rng(0)
    >>> note = VOICES["organ"](440.0, 0.5, 22050, voice_params("organ", rng), rng)
    >>> note.dtype, note.ndim
    (dtype('float32'), 1)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Params = dict[str, Any]


def _adsr(n_on: int, n_total: int, attack: int, decay: int, sustain: float) -> np.ndarray:
    """Envelope: attack/decay to ``sustain`` in the first ``n_on`` samples, then release."""
    env = np.full(n_total, sustain, dtype=np.float64)
    a = max(1, min(attack, n_on))
    env[:a] = np.linspace(0.0, 1.0, a)
    d = max(1, min(decay, max(n_on - a, 1)))
    env[a : a + d] = np.linspace(1.0, sustain, d)[: max(0, min(d, n_total - a))]
    rel = n_total - n_on
    if rel > 0:
        env[n_on:] = env[n_on - 1] * np.exp(-np.arange(rel) / max(rel / 5.0, 1.0))
    return env


def _phase(
    freq: float,
    n: int,
    sr: int,
    vib_hz: float = 0.0,
    vib_depth: float = 0.0,
    rng_phase: float = 0.0,
) -> np.ndarray:
    t = np.arange(n) / sr
    inst = freq * (1.0 + vib_depth * np.sin(2 * np.pi * vib_hz * t + rng_phase))
    return 2 * np.pi * np.cumsum(inst) / sr


def organ(freq: float, seconds: float, sr: int, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Additive drawbar organ: fixed harmonic weights, flat sustain, optional tremolo."""
    n_on = int(seconds * sr)
    n = n_on + int(0.06 * sr)
    ph = _phase(freq, n, sr)
    x = sum(
        w * np.sin(r * ph)
        for r, w in zip(p["ratios"], p["weights"], strict=True)
        if r * freq < sr / 2
    )
    trem = 1.0 + p["tremolo"] * np.sin(2 * np.pi * 6.0 * np.arange(n) / sr)
    return (x * trem * _adsr(n_on, n, int(0.01 * sr), 1, 1.0)).astype(np.float32)


def bell(freq: float, seconds: float, sr: int, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Two-operator FM (bell / electric piano): decaying modulation index, exponential decay."""
    n = int((seconds + p["ring"]) * sr)
    t = np.arange(n) / sr
    index = p["index"] * np.exp(-t / p["index_decay"])
    x = np.sin(2 * np.pi * freq * t + index * np.sin(2 * np.pi * p["ratio"] * freq * t))
    env = np.exp(-t / p["decay"]) * np.minimum(1.0, t / 0.002)
    return (x * env).astype(np.float32)


def pluck(freq: float, seconds: float, sr: int, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Karplus-Strong plucked string, computed one period at a time (vectorised per period)."""
    n = int((seconds + p["ring"]) * sr)
    period = max(2, int(round(sr / freq)))
    burst = rng.uniform(-1, 1, period)
    for _ in range(p["smooth"]):  # a softer pluck: fewer high partials in the excitation
        burst = 0.5 * (burst + np.roll(burst, 1))
    y = np.zeros(n + period)
    y[:period] = burst - burst.mean()
    g = 0.5 * p["damping"]
    for s in range(period, n, period):
        prev = y[s - period : s]
        shifted = np.concatenate(([y[s - period - 1] if s - period - 1 >= 0 else 0.0], prev[:-1]))
        y[s : s + period] = g * (prev + shifted)
    y = y[:n]
    n_on = int(seconds * sr)
    if n_on < n:  # muted after note-off
        y[n_on:] *= np.exp(-np.arange(n - n_on) / (0.05 * sr))
    return y.astype(np.float32)


def brass(freq: float, seconds: float, sr: int, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Filtered sawtooth (brass / bowed): band-limited harmonics, swelling low-pass."""
    n_on = int(seconds * sr)
    n = n_on + int(0.08 * sr)
    env = _adsr(n_on, n, int(p["attack"] * sr), int(0.1 * sr), 0.8)
    ph = _phase(freq, n, sr, 5.0, p["vibrato"], rng.uniform(0, 2 * np.pi))
    cutoff = freq * (
        1.0 + p["brightness"] * env
    )  # brighter as it gets louder, like a real brass tone
    x = np.zeros(n)
    for k in range(1, min(40, int(sr / 2 / freq)) + 1):
        x += np.sin(k * ph) / k / np.sqrt(1.0 + (k * freq / cutoff) ** 4)
    return (x * env).astype(np.float32)


def flute(freq: float, seconds: float, sr: int, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Breathy flute: near-sinusoid with vibrato plus noise band-passed around the pitch."""
    n_on = int(seconds * sr)
    n = n_on + int(0.05 * sr)
    env = _adsr(n_on, n, int(p["attack"] * sr), int(0.05 * sr), 0.85)
    ph = _phase(freq, n, sr, p["vib_hz"], 0.006, rng.uniform(0, 2 * np.pi))
    tone = np.sin(ph) + p["h2"] * np.sin(2 * ph) + 0.05 * np.sin(3 * ph)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    band = np.exp(-0.5 * ((f - freq) / (0.15 * freq)) ** 2) + 0.1 * np.exp(-f / 4000.0)
    noise = np.fft.irfft(spec * band, n)
    noise *= p["breath"] / (np.std(noise) + 1e-9)
    return ((tone + noise) * env).astype(np.float32)


VOICES: dict[str, Callable[..., np.ndarray]] = {
    "organ": organ,
    "bell": bell,
    "pluck": pluck,
    "brass": brass,
    "flute": flute,
}


def voice_params(name: str, rng: np.random.Generator) -> Params:
    """Per-track timbre parameters of voice ``name`` drawn from ``rng``."""
    u = rng.uniform
    if name == "organ":
        ratios = [0.5, 1, 1.5, 2, 3, 4, 5, 6, 8]
        return {
            "ratios": ratios,
            "weights": u(0, 1, len(ratios)) * (rng.random(len(ratios)) < 0.7),
            "tremolo": u(0, 0.3) * (rng.random() < 0.5),
        }
    if name == "bell":
        return {
            "ratio": float(rng.choice([1.0, 1.41, 2.0, 2.76, 3.5])),
            "index": u(1.0, 6.0),
            "index_decay": u(0.05, 0.6),
            "decay": u(0.3, 1.5),
            "ring": u(0.2, 0.8),
        }
    if name == "pluck":
        return {"damping": u(0.985, 0.999), "smooth": int(rng.integers(0, 4)), "ring": u(0.1, 0.5)}
    if name == "brass":
        return {"attack": u(0.03, 0.15), "brightness": u(2.0, 10.0), "vibrato": u(0.0, 0.006)}
    if name == "flute":
        return {
            "attack": u(0.04, 0.12),
            "vib_hz": u(4.0, 6.0),
            "h2": u(0.05, 0.3),
            "breath": u(0.05, 0.3),
        }
    raise KeyError(f"unknown voice {name!r}; choices: {sorted(VOICES)}")
