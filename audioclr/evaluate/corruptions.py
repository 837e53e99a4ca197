"""Test-time corruptions for robustness: ``name:level`` specs, one function each in ``CORRUPTIONS``.

A probe is trained on clean audio and tested on each corrupted version of the test split. Every
corruption maps ``(samples,)`` float32 to the same length at the same rate, deterministically for
a ``numpy.random.Generator`` (see :func:`track_rng`: one per corruption seed, spec and track).

- ``noise:SNR``: white Gaussian noise at SNR dB relative to the clip's RMS
  (``augment.functional.add_noise``; the measured SNR is within ~0.1 dB on clips of a second).
- ``mp3:KBPS``: a real MP3 round trip (libsndfile's LAME encoder through soundfile), constant
  bitrate. libsndfile maps ``compression_level`` c in [0, 1] linearly to a bitrate:
  ``320 - 288 c`` kbps at >= 32 kHz (MPEG-1), ``160 - 152 c`` at 16-32 kHz (MPEG-2),
  ``64 - 56 c`` below (MPEG-2.5); :func:`mp3_level` inverts it, so ``mp3:32`` is 32 kbps CBR
  (measured by the file size). The decoded audio is re-aligned with the input (at low bitrates
  LAME resamples and the decoder returns its delay as extra samples; the offset is found by
  cross-correlation within them) and cut to the input's length.
- ``ogg:KBPS``: a real Vorbis round trip (libsndfile's VBR quality mode is all it exposes:
  ``compression_level`` c is quality ``1 - c``); :func:`ogg_level` picks the highest quality
  whose bitrate on a reference signal (10 s of seeded noise plus a tone at the clip's rate) is at
  most KBPS, by bisection, once per (rate, KBPS). Vorbis has a floor: its lowest quality is
  ~35 kbps at 22.05 kHz mono, ~29 at 16 kHz, ~19 at 8 kHz; a lower KBPS gets that floor.
- ``lowpass:HZ``: 8th-order Butterworth low-pass (scipy ``sosfiltfilt``, zero phase).
- ``gain:DB``: multiply by ``10 ** (DB / 20)`` (no clipping).
- ``reverb:RT60``: convolution with a synthetic room response of RT60 seconds (noise under an
  exponential decay, direct sound first, unit energy; ``augment.functional.synthetic_ir``),
  fully wet.
- ``shift:FRACTION``: circular time shift by FRACTION of the encoder's window (content kept,
  window boundaries moved).

Example:
    >>> spec = parse_corruption("noise:10")
    >>> y = corrupt(x, spec, sample_rate=22050, window=59049, rng=track_rng(0, spec, 3))
    >>> y.shape == x.shape
    True
"""

from __future__ import annotations

import functools
import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from audioclr.errors import ConfigError


@dataclass(frozen=True)
class Corruption:
    """One parsed ``name:level`` spec (``str()`` gives it back)."""

    name: str
    level: float

    def __str__(self) -> str:
        return f"{self.name}:{self.level:g}"


def _torch_rng(rng: np.random.Generator) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(0, 2**62)))


def add_noise(
    x: np.ndarray, snr_db: float, sample_rate: int, window: int, rng: np.random.Generator
) -> np.ndarray:
    """White noise at ``snr_db`` relative to the clip's RMS."""
    from audioclr.augment.functional import add_noise as noise

    t = torch.from_numpy(np.ascontiguousarray(x, np.float32))[None]
    y = noise(t, torch.tensor([float(snr_db)]), _torch_rng(rng), torch.tensor([True]))
    return y[0].numpy()


def mp3_level(kbps: float, sample_rate: int) -> float:
    """libsndfile's ``compression_level`` for a constant ``kbps`` MP3 at ``sample_rate``.

    Example:
        >>> mp3_level(32, 44100), round(mp3_level(32, 22050), 3)
        (0.999, 0.839)
    """
    lo, hi = (
        (32.0, 320.0) if sample_rate >= 32000 else (8.0, 160.0 if sample_rate >= 16000 else 64.0)
    )
    # libsndfile truncates hi - c (hi - lo) to an integer: aim half a kbps above the target;
    # c = 1 is refused by soundfile, and its lowest bitrate is reached from 0.999 on
    return float(np.clip((hi - kbps - 0.5) / (hi - lo), 0.0, 0.999))


def _round_trip(
    x: np.ndarray, sample_rate: int, fmt: str, subtype: str, level: float, **kwargs: str
) -> tuple[np.ndarray, int]:
    """Encode ``x`` with soundfile and decode it: (decoded samples, encoded bytes)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, x, sample_rate, format=fmt, subtype=subtype, compression_level=level, **kwargs)
    size = buf.tell()
    buf.seek(0)
    y, rate = sf.read(buf, dtype="float32")
    if rate != sample_rate:
        raise ConfigError(f"{fmt} round trip changed the rate {sample_rate} -> {rate}")
    return (y.mean(axis=1) if y.ndim > 1 else y).astype(np.float32), size


def aligned(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``y`` cut to ``x``'s length at the offset (within its extra samples) that best matches
    ``x`` (cross-correlation by FFT); zero-padded when shorter."""
    n, extra = len(x), len(y) - len(x)
    if extra <= 0:
        return np.pad(y, (0, -extra))
    from scipy.signal import correlate

    lags = correlate(y, x, mode="valid", method="fft")  # (extra + 1,)
    start = int(np.argmax(lags))
    return y[start : start + n]


def mp3(
    x: np.ndarray, kbps: float, sample_rate: int, window: int, rng: np.random.Generator
) -> np.ndarray:
    """MP3 round trip at ``kbps`` constant bitrate (libsndfile/LAME)."""
    level = mp3_level(kbps, sample_rate)
    y, _ = _round_trip(x, sample_rate, "MP3", "MPEG_LAYER_III", level, bitrate_mode="CONSTANT")
    return aligned(y, x)


@functools.lru_cache(maxsize=64)
def ogg_level(kbps: float, sample_rate: int, steps: int = 8) -> float:
    """The lowest ``compression_level`` (highest Vorbis quality) whose bitrate on a reference
    signal at ``sample_rate`` is at most ``kbps``; 1.0 (the floor) when none is."""
    rng = np.random.default_rng(0)
    n = 10 * sample_rate
    t = np.arange(n) / sample_rate
    ref = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)

    def rate(level: float) -> float:
        return _round_trip(ref, sample_rate, "OGG", "VORBIS", level)[1] * 8 / 10 / 1000

    lo, hi = 0.0, 1.0
    if rate(hi) > kbps:
        return 1.0
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if rate(mid) > kbps else (lo, mid)
    return hi


def ogg(
    x: np.ndarray, kbps: float, sample_rate: int, window: int, rng: np.random.Generator
) -> np.ndarray:
    """Ogg Vorbis round trip at about ``kbps`` (see :func:`ogg_level`)."""
    y, _ = _round_trip(x, sample_rate, "OGG", "VORBIS", ogg_level(float(kbps), sample_rate))
    return aligned(y, x)


def lowpass(
    x: np.ndarray, hz: float, sample_rate: int, window: int, rng: np.random.Generator
) -> np.ndarray:
    """8th-order Butterworth low-pass at ``hz``, zero phase."""
    from scipy.signal import butter, sosfiltfilt

    if not 0 < hz < sample_rate / 2:
        raise ConfigError(f"corruption lowpass:{hz:g} needs 0 < Hz < {sample_rate / 2:g} (Nyquist)")
    sos = butter(8, hz, btype="low", fs=sample_rate, output="sos")
    return sosfiltfilt(sos, x).astype(np.float32)


def gain(
    x: np.ndarray, db: float, sample_rate: int, window: int, rng: np.random.Generator
) -> np.ndarray:
    """``x * 10 ** (db / 20)``."""
    return (x * np.float32(10 ** (db / 20))).astype(np.float32)


def reverb(
    x: np.ndarray, rt60_s: float, sample_rate: int, window: int, rng: np.random.Generator
) -> np.ndarray:
    """Fully wet convolution with a synthetic response of ``rt60_s`` seconds."""
    from audioclr.augment import functional as F

    rt60 = torch.tensor([float(rt60_s)])
    ir = F.synthetic_ir(
        rt60, max(1, int(np.ceil(rt60_s * sample_rate))), sample_rate, _torch_rng(rng)
    )
    t = torch.from_numpy(np.ascontiguousarray(x, np.float32))[None]
    return F.reverb(t, ir, torch.zeros(1, dtype=torch.long), torch.ones(1))[0].numpy()


def shift(
    x: np.ndarray, fraction: float, sample_rate: int, window: int, rng: np.random.Generator
) -> np.ndarray:
    """Circular shift by ``fraction`` of ``window`` samples."""
    return np.roll(x, int(round(fraction * window)))


CorruptionFn = Callable[[np.ndarray, float, int, int, np.random.Generator], np.ndarray]
CORRUPTIONS: dict[str, CorruptionFn] = {
    "noise": add_noise,
    "mp3": mp3,
    "ogg": ogg,
    "lowpass": lowpass,
    "gain": gain,
    "reverb": reverb,
    "shift": shift,
}
_POSITIVE = {"mp3", "ogg", "lowpass", "reverb"}


def parse_corruption(spec: str, key: str = "corruptions") -> Corruption:
    """``"noise:10"`` -> ``Corruption("noise", 10.0)``; ``ConfigError`` naming ``key`` otherwise."""
    name, _, raw = str(spec).partition(":")
    if name not in CORRUPTIONS:
        raise ConfigError(
            f"config key '{key}': unknown corruption {spec!r}",
            hint=f"write name:level with name one of {sorted(CORRUPTIONS)}, e.g. noise:10",
        )
    try:
        level = float(raw)
    except ValueError:
        raise ConfigError(
            f"config key '{key}': corruption {spec!r} needs a numeric level (name:level)",
            hint="e.g. noise:10 mp3:32 lowpass:3400 gain:-20 reverb:0.8 shift:0.5",
        ) from None
    if name in _POSITIVE and level <= 0:
        raise ConfigError(f"config key '{key}': corruption {spec!r} needs a level > 0")
    return Corruption(name, level)


def track_rng(seed: int, spec: Corruption, track: int) -> np.random.Generator:
    """The generator of one track's corruption: from the seed, the spec and the track index."""
    return np.random.default_rng([seed, zlib.crc32(str(spec).encode()), track])


def corrupt(
    x: np.ndarray, spec: Corruption, sample_rate: int, window: int, rng: np.random.Generator
) -> np.ndarray:
    """``(samples,)`` -> the corrupted ``(samples,)`` float32, same rate."""
    y = CORRUPTIONS[spec.name](np.asarray(x, np.float32), spec.level, sample_rate, window, rng)
    return np.asarray(y, np.float32)
