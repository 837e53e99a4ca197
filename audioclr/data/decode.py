"""Decode any audio file to float32 mono at a chosen sample rate (soundfile, soxr).

Example:
    >>> x = decode_audio("song.flac", sample_rate=22050)   # (samples,) float32
    >>> downmix(np.ones((4, 2), np.float32)).shape
    (4,)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from audioclr.data.scan import FFMPEG_EXTS, torchcodec_available
from audioclr.errors import AudioReadError

BLOCK_FRAMES = 1 << 18  # decode long files in blocks so memory stays bounded


def downmix(x: np.ndarray) -> np.ndarray:
    """Channel mean: ``(frames,)`` or ``(frames, channels)`` -> ``(frames,)`` float32."""
    x = np.asarray(x)
    if x.ndim == 1:
        return x.astype(np.float32, copy=False)
    if x.ndim != 2:
        raise ValueError(f"expected (frames,) or (frames, channels), got shape {x.shape}")
    acc = np.array(
        x[:, 0], dtype=np.float32
    )  # column sums: much faster than mean(axis=1) on (frames, 2)
    for c in range(1, x.shape[1]):
        acc += x[:, c]
    if x.shape[1] > 1:
        acc *= np.float32(1.0 / x.shape[1])
    return acc


def resample(x: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Resample ``(frames,)`` audio from ``orig_sr`` to ``new_sr`` with soxr (HQ); float32 out."""
    x = np.asarray(x, dtype=np.float32)
    if orig_sr == new_sr:
        return x
    return np.asarray(soxr.resample(x, orig_sr, new_sr, quality="HQ"), dtype=np.float32)


def _decode_soundfile(path: Path, sample_rate: int) -> np.ndarray:
    with sf.SoundFile(str(path)) as f:
        orig_sr = f.samplerate
        if f.frames <= BLOCK_FRAMES:  # the common case: one read, one resample
            return resample(downmix(f.read(dtype="float32", always_2d=True)), orig_sr, sample_rate)
        stream = (
            None
            if orig_sr == sample_rate
            else soxr.ResampleStream(orig_sr, sample_rate, 1, "float32", "HQ")
        )
        parts: list[np.ndarray] = []
        while True:
            block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
            last = len(block) < BLOCK_FRAMES
            mono = downmix(block)
            parts.append(mono if stream is None else stream.resample_chunk(mono, last=last))
            if last:
                break
    return np.concatenate(parts).astype(np.float32, copy=False)


def _decode_torchcodec(path: Path, sample_rate: int) -> np.ndarray:
    from torchcodec.decoders import AudioDecoder  # optional: only with FFmpeg installed

    samples = AudioDecoder(str(path)).get_all_samples()
    x = samples.data.numpy().T  # (channels, frames) -> (frames, channels)
    return resample(downmix(x), int(samples.sample_rate), sample_rate)


def decode_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode ``path`` to float32 mono ``(samples,)`` at ``sample_rate``.

    Raises ``AudioReadError`` naming the file when it is missing, unreadable, empty or corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioReadError(f"{path}: no such file", hint="check the path")
    if path.stat().st_size == 0:
        raise AudioReadError(f"{path}: empty file (0 bytes)")
    try:
        if path.suffix.lower() in FFMPEG_EXTS:
            if not torchcodec_available():
                raise AudioReadError(
                    f"{path}: container {path.suffix} needs torchcodec with FFmpeg, not installed"
                )
            return _decode_torchcodec(path, sample_rate)
        return _decode_soundfile(path, sample_rate)
    except PermissionError as exc:
        raise AudioReadError(
            f"{path}: unreadable ({exc.strerror})", hint="check the file permissions"
        ) from exc
    except sf.LibsndfileError as exc:
        raise AudioReadError(f"{path}: corrupt or unsupported audio ({exc.error_string})") from exc
    except (RuntimeError, ValueError, OSError) as exc:
        raise AudioReadError(f"{path}: cannot decode ({exc})") from exc
