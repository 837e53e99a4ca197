"""Listen to and look at the views the augmentation chain makes of one clip.

Writes ``original.wav``, ``view_00.wav`` ... (float WAV, no clipping) and ``views.png`` (log-mel
spectrograms side by side, SpecAugment masks shown when enabled) into ``out_dir``.

Example:
    >>> result = preview_views("song.flac", "preview/", views=4, seed=0)
    >>> print(result.descriptions[0])        # e.g. "polarity, lowpass(3120 Hz), pitch(+2.0 st)"
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from audioclr.atomic import atomic_write
from audioclr.augment.batched import BatchedAugment, SpecAugment, describe
from audioclr.augment.config import AugmentConfig
from audioclr.augment.cpu import CPUAugment
from audioclr.config import require
from audioclr.errors import AudioReadError


@dataclass
class PreviewResult:
    """What :func:`preview_views` wrote and applied."""

    wavs: list[Path] = field(default_factory=list)
    png: Path | None = None
    descriptions: list[str] = field(default_factory=list)
    sample_rate: int = 0


def _write_wav(path: Path, x: np.ndarray, sample_rate: int) -> Path:
    return atomic_write(
        path, lambda fh: sf.write(fh, x, sample_rate, subtype="FLOAT", format="WAV")
    )


def load_clip(audio: str | Path, seconds: float) -> tuple[np.ndarray, int]:
    """The first ``seconds`` of ``audio`` as float32 mono at its own sample rate."""
    from audioclr.data.decode import decode_audio

    if not Path(audio).is_file():
        raise AudioReadError(f"{audio}: no such file", hint="check the path")
    try:
        sample_rate = sf.info(str(audio)).samplerate
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioReadError(
            f"{audio}: cannot read audio ({exc})", hint="give a WAV/FLAC/OGG file"
        ) from exc
    x = decode_audio(audio, sample_rate)[: int(seconds * sample_rate)]
    if len(x) == 0:
        raise AudioReadError(f"{audio}: no samples to preview")
    return x, sample_rate


def make_views(
    x: np.ndarray,
    sample_rate: int,
    cfg: AugmentConfig,
    views: int,
    seed: int,
    path: str = "batched",
) -> tuple[np.ndarray, list[str]]:
    """``views`` augmented copies of ``x`` ``(samples,)``: ``(views, samples)``, descriptions."""
    if path == "cpu":
        aug, rng = CPUAugment(cfg, sample_rate), np.random.default_rng(seed)
        runs = [aug.run(x, rng) for _ in range(views)]
        return np.stack([r[0] for r in runs]), [", ".join(r[1]) or "identity" for r in runs]
    batched, g = BatchedAugment(cfg, sample_rate), torch.Generator().manual_seed(seed)
    params = batched.sample_params(views, g)
    out = batched.apply(torch.from_numpy(x).repeat(views, 1), params, g)
    return out.numpy(), [describe(params, i) for i in range(views)]


def log_mel(x: np.ndarray, sample_rate: int, n_mels: int = 64) -> torch.Tensor:
    """``(batch, samples)`` -> ``(batch, mels, frames)`` log-mel in dB."""
    import torchaudio.transforms as T

    mel = T.MelSpectrogram(sample_rate, n_fft=1024, hop_length=256, n_mels=n_mels)
    return T.AmplitudeToDB(top_db=80.0)(mel(torch.from_numpy(np.atleast_2d(x))))


def plot_views(mels: torch.Tensor, titles: list[str], path: Path) -> Path:
    """Spectrograms ``(n, mels, frames)`` side by side in one PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(mels), figsize=(2.4 * len(mels), 4.2), squeeze=False)
    for ax, m, title in zip(axes[0], mels, titles, strict=True):
        ax.imshow(m.numpy(), origin="lower", aspect="auto", cmap="magma")
        name, _, detail = title.partition(": ")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(textwrap.fill(detail.replace(", ", "; "), 30), fontsize=6.5)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, dpi=100, format="png"))
    plt.close(fig)
    return path


def preview_views(
    audio: str | Path,
    out_dir: str | Path,
    views: int = 8,
    seed: int = 0,
    cfg: AugmentConfig | None = None,
    seconds: float = 3.0,
    path: str = "batched",
) -> PreviewResult:
    """Write ``views`` views of the first ``seconds`` of ``audio`` and their spectrograms."""
    require(views >= 1, "views", views, "must be >= 1")
    require(seconds > 0, "seconds", seconds, "must be > 0")
    require(path in ("batched", "cpu"), "path", path, "must be 'batched' or 'cpu'")
    cfg = cfg or AugmentConfig()
    x, sr = load_clip(audio, seconds)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ys, descriptions = make_views(x, sr, cfg, views, seed, path)
    result = PreviewResult(descriptions=descriptions, sample_rate=sr)
    result.wavs.append(_write_wav(out / "original.wav", x, sr))
    result.wavs += [_write_wav(out / f"view_{i:02d}.wav", y, sr) for i, y in enumerate(ys)]
    mels = log_mel(np.concatenate([x[None], ys]), sr)
    masks = SpecAugment(cfg.time_mask, cfg.freq_mask)
    mels[1:] = masks(mels[1:], torch.Generator().manual_seed(seed))
    titles = ["original: mel 64 x frames, dB"] + [
        f"view {i}: {d}" for i, d in enumerate(descriptions)
    ]
    result.png = plot_views(mels, titles, out / "views.png")
    return result
