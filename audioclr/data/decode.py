"""Decode any audio file to float32 mono at a chosen sample rate (soundfile, soxr).

A file that cannot be decoded raises ``DecodeError`` with the kind of failure (``permission``,
``io``, ``missing``, ``empty``, ``corrupt``, ``unsupported``, ``truncated``). File names may
hold any bytes (soundfile is given ``os.fsencode(path)``).

Example:
    >>> x = decode_audio("song.flac", sample_rate=22050)   # (samples,) float32
    >>> downmix(np.ones((4, 2), np.float32)).shape
    (4,)
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from audioclr.data.scan import FFMPEG_EXTS, os_error_kind, shown, torchcodec_available
from audioclr.errors import AudioReadError

BLOCK_FRAMES = 1 << 18  # decode long files in blocks so memory stays bounded
STREAMED_SIZE = 0xFFFFFFF0  # a length field this large (or 0) means "not known when written"
SF_ERR_SYSTEM, SF_ERR_UNSUPPORTED_ENCODING = 2, 4  # libsndfile error codes
HINTS = {"permission": "check the file permissions", "missing": "check the path"}


class DecodeError(AudioReadError):
    """A file that cannot be decoded: the message names it (escaped), ``kind`` says how it
    failed (a reject kind of ``manifest.Reject``), ``reason`` says why without the path.

    Example:
        >>> try:
        ...     decode_audio("locked.wav", 22050)
        ... except DecodeError as exc:
        ...     exc.kind, exc.reason
        ('permission', 'permission denied')
    """

    def __init__(self, path: str | Path, kind: str, reason: str, hint: str | None = None) -> None:
        super().__init__(f"{shown(path)}: {reason}", hint)
        self.kind, self.reason = kind, reason


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


ESTIMATE_SLACK = 0.05


def _truncation(f: sf.SoundFile, frames_read: int) -> str | None:
    """Why ``f`` is shorter than its header says, or None: fewer frames read than the header
    counts, or (WAV/AIFF, where libsndfile trims the count to the file) a data chunk that
    claims at least a frame more than the file holds."""
    # MP3 and Ogg frame counts are estimates (a whole file may decode a few thousand frames
    # short): there only a file missing more than ESTIMATE_SLACK of its count is truncated
    slack = ESTIMATE_SLACK * f.frames if f.format in ("MP3", "MPEG", "OGG") else 0
    if frames_read + slack < f.frames < STREAMED_SIZE:
        return f"the header promises {f.frames} frames, only {frames_read} could be read"
    m = re.search(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", f.extra_info, re.M)
    if m and 0 < int(m.group(2)) <= int(m.group(1)) - 8 * f.channels < STREAMED_SIZE:
        return (
            f"the header promises {int(m.group(1))} bytes of audio, "
            f"the file holds {int(m.group(2))}"
        )
    return None


def _decode_soundfile(path: Path, sample_rate: int) -> tuple[np.ndarray, str | None]:
    with sf.SoundFile(os.fsencode(path)) as f:  # bytes: any name the OS gave
        orig_sr = f.samplerate
        if f.frames <= BLOCK_FRAMES:  # the common case: one read, one resample
            block = f.read(dtype="float32", always_2d=True)
            return resample(downmix(block), orig_sr, sample_rate), _truncation(f, len(block))
        stream = (
            None
            if orig_sr == sample_rate
            else soxr.ResampleStream(orig_sr, sample_rate, 1, "float32", "HQ")
        )
        parts: list[np.ndarray] = []
        frames = 0
        while True:
            block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
            frames += len(block)
            last = len(block) < BLOCK_FRAMES
            mono = downmix(block)
            parts.append(mono if stream is None else stream.resample_chunk(mono, last=last))
            if last:
                break
        return np.concatenate(parts).astype(np.float32, copy=False), _truncation(f, frames)


def _decode_torchcodec(path: Path, sample_rate: int) -> np.ndarray:
    from torchcodec.decoders import AudioDecoder  # optional: only with FFmpeg installed

    samples = AudioDecoder(str(path)).get_all_samples()
    x = samples.data.numpy().T  # (channels, frames) -> (frames, channels)
    return resample(downmix(x), int(samples.sample_rate), sample_rate)


def _check_readable(path: Path) -> None:
    """``DecodeError`` (missing / permission / io / empty) unless ``path`` is a non-empty file
    this process may open."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise DecodeError(path, "unsupported", "not a regular file")
        os.close(os.open(path, os.O_RDONLY))
    except OSError as exc:
        kind, why = os_error_kind(exc)
        raise DecodeError(path, kind, why, hint=HINTS.get(kind)) from exc
    if st.st_size == 0:
        raise DecodeError(path, "empty", "empty file (0 bytes)")


def decode_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode ``path`` to float32 mono ``(samples,)`` at ``sample_rate``.

    Raises ``DecodeError`` (an ``AudioReadError``) naming the file and the kind of failure when
    it is missing, unreadable, empty, corrupt or truncated (shorter than its header says).
    """
    path = Path(path)
    _check_readable(path)
    try:
        if path.suffix.lower() in FFMPEG_EXTS:
            if not torchcodec_available():
                raise DecodeError(
                    path,
                    "unsupported",
                    f"container {path.suffix} needs torchcodec with FFmpeg, not installed",
                )
            return _decode_torchcodec(path, sample_rate)
        x, truncated = _decode_soundfile(path, sample_rate)
    except OSError as exc:
        kind, why = os_error_kind(exc)
        raise DecodeError(path, kind, why, hint=HINTS.get(kind)) from exc
    except sf.LibsndfileError as exc:
        if exc.code == SF_ERR_SYSTEM:  # the OS failed a read: may pass, so retried next run
            raise DecodeError(path, "io", f"I/O error ({exc.error_string})") from exc
        kind = "unsupported" if exc.code == SF_ERR_UNSUPPORTED_ENCODING else "corrupt"
        raise DecodeError(path, kind, f"corrupt or unsupported audio ({exc.error_string})") from exc
    except (RuntimeError, ValueError) as exc:
        raise DecodeError(path, "corrupt", f"cannot decode ({exc})") from exc
    if truncated:
        raise DecodeError(
            path,
            "truncated",
            f"truncated: {truncated}",
            hint="the file was cut short: copy it again",
        )
    return x
