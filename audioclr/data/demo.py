"""The built-in demo corpus: five synthetic instrument families playing melodies, as real WAV files.

Class = instrument family (its synthesis and envelopes). Everything else is a nuisance drawn
independently of the class: key, scale, register (about three octaves), tempo, duration,
loudness, spectral tilt, reverb, percussion and background noise at a random SNR. So labels
need timbre; loudness and duration alone predict nothing. Each track has its own generator,
seeded by ``(seed, class, index)``: the same seed gives byte-identical files.

Example:
    >>> labels_csv = make_demo_corpus("demo/", seed=0)  # demo/audio/<class>/*.wav, demo/unlabeled/
    >>> labels_csv.read_text().splitlines()[1]
    'audio/bell/bell_000.wav,bell'
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from audioclr.atomic import atomic_write, atomic_write_text
from audioclr.data.demo_synth import VOICES, voice_params

SAMPLE_RATE = 22050
CLASSES = sorted(VOICES)
SCALES = {
    "major": [0, 2, 4, 5, 7, 9, 11],
    "minor": [0, 2, 3, 5, 7, 8, 10],
    "pentatonic": [0, 2, 4, 7, 9],
}


def _melody(rng: np.random.Generator, seconds: float) -> list[tuple[float, float, float | None]]:
    """Notes ``(start s, length s, Hz or None = rest)``: random key, scale, register, tempo."""
    scale = SCALES[str(rng.choice(list(SCALES)))]
    root = (
        36 + int(rng.integers(0, 12)) + 12 * int(rng.integers(0, 3))
    )  # tonic in one of three octaves
    beat = 60.0 / rng.uniform(70, 150)
    legato = rng.uniform(0.6, 1.0)
    degree, t, notes = int(rng.integers(0, len(scale))), 0.0, []
    while t < seconds:
        length = beat * float(rng.choice([0.5, 1, 1, 1.5, 2]))
        degree = int(np.clip(degree + rng.integers(-3, 4), 0, 2 * len(scale)))
        midi = root + 12 * (degree // len(scale)) + scale[degree % len(scale)]
        freq = 440.0 * 2 ** ((midi + 12 - 69) / 12)
        notes.append((t, length * legato, None if rng.random() < 0.1 else freq))
        t += length
    return notes


def _percussion(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Kick on beats, noise hats on eighths, at a tempo of their own."""
    out = np.zeros(n)
    beat = int(sr * 60.0 / rng.uniform(80, 140))
    kick_t = np.arange(int(0.15 * sr)) / sr
    kick = np.sin(2 * np.pi * np.cumsum(50 + 100 * np.exp(-kick_t / 0.03)) / sr) * np.exp(
        -kick_t / 0.05
    )
    hat_len = int(0.04 * sr)
    for i, s in enumerate(range(0, n, beat // 2)):
        if i % 2 == 0:
            e = min(n, s + len(kick))
            out[s:e] += kick[: e - s]
        hat = (
            np.diff(rng.standard_normal(hat_len + 1))
            * np.exp(-np.arange(hat_len) / (0.008 * sr))
            * 0.3
        )
        e = min(n, s + hat_len)
        out[s:e] += hat[: e - s]
    return out


def _colour(x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Random spectral tilt (dB/octave) and sometimes a room (decaying-noise impulse response)."""
    n = len(x)
    size = 1 << int(np.ceil(np.log2(n + sr)))
    f = np.maximum(np.fft.rfftfreq(size, 1.0 / sr), 50.0)
    spec = np.fft.rfft(x, size) * 10 ** (rng.uniform(-2, 2) * np.log2(f / 1000.0) / 20)
    if rng.random() < 0.5:
        rt60 = rng.uniform(0.2, 1.2)
        ir_t = np.arange(int(rt60 * sr)) / sr
        ir = rng.standard_normal(len(ir_t)) * np.exp(-6.9 * ir_t / rt60)
        ir = ir / np.sqrt(np.sum(ir**2)) * rng.uniform(0.2, 0.6)
        ir[0] += 1.0
        spec *= np.fft.rfft(ir, size)
    return np.fft.irfft(spec, size)[:n]


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White, pink or brown noise of unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec)) + 1.0
    spec /= f ** float(rng.choice([0.0, 0.5, 1.0]))  # amplitude slope: white, pink, brown
    y = np.fft.irfft(spec, n)
    return y / (np.sqrt(np.mean(y**2)) + 1e-12)


def synth_track(label: str, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """One demo track of instrument ``label``: ``(samples,)`` float32 in [-1, 1], 4-8 s."""
    seconds = rng.uniform(4.0, 8.0)
    n = int(seconds * sr)
    params = voice_params(label, rng)
    x = np.zeros(n + 2 * sr)
    for start, length, freq in _melody(rng, seconds):
        if freq is None:
            continue
        note = VOICES[label](freq, length, sr, params, rng) * rng.uniform(0.6, 1.0)
        s = int(start * sr)
        e = min(len(x), s + len(note))
        x[s:e] += note[: e - s]
    x = _colour(x[:n], rng, sr)
    x /= np.sqrt(np.mean(x**2)) + 1e-12
    if rng.random() < 0.4:
        drums = _percussion(rng, n, sr)
        x += drums / (np.sqrt(np.mean(drums**2)) + 1e-12) * 10 ** (-rng.uniform(0, 12) / 20)
    if rng.random() < 0.6:
        x += _noise(rng, n) * np.sqrt(np.mean(x**2)) * 10 ** (-rng.uniform(10, 30) / 20)
    fade = min(n, int(0.02 * sr))
    x[-fade:] *= np.linspace(1.0, 0.0, fade)
    x *= 10 ** (rng.uniform(-32, -20) / 20) / (
        np.sqrt(np.mean(x**2)) + 1e-12
    )  # loudness: independent of class
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def make_demo_corpus(
    out: str | Path,
    seed: int = 0,
    per_class: int = 32,
    progress: bool = True,
    unlabeled_per_class: int = 32,
) -> Path:
    """Write ``out/audio/<class>/<class>_NNN.wav`` (22050 Hz, 16-bit) + ``out/labels.csv``.

    ``unlabeled_per_class`` > 0 also writes that many other tracks of each class, unlabelled and
    shuffled, as ``out/unlabeled/track_NNNN.wav``: a pretraining corpus disjoint from the
    labelled one by construction (other generator streams, other files). Files already present
    with the same name are rewritten (generation is deterministic).
    """
    out = Path(out)
    rows = ["path,label"]
    jobs = [
        (f"audio/{label}/{label}_{i:03d}.wav", [seed, ci, i], label)
        for ci, label in enumerate(CLASSES)
        for i in range(per_class)
    ]
    order = np.random.default_rng([seed, 1]).permutation(len(CLASSES) * unlabeled_per_class)
    for k, j in enumerate(order):
        ci, i = divmod(int(j), unlabeled_per_class)
        jobs.append((f"unlabeled/track_{k:04d}.wav", [seed, ci, i, 1], CLASSES[ci]))
    for rel, stream, label in tqdm(jobs, desc="demo-data", unit="track", disable=not progress):
        x = synth_track(label, np.random.default_rng(stream))
        atomic_write(
            out / rel, lambda fh, x=x: sf.write(fh, x, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        )
        if rel.startswith("audio/"):
            rows.append(f"{rel},{label}")
    labels = out / "labels.csv"
    atomic_write_text(labels, "\n".join(rows) + "\n")
    return labels
