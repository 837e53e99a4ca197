"""MFCC statistics, the hand-crafted baseline (the ``mfcc`` method of ``evaluate/methods``).

MFCC statistics (one vector per track, size ``4 * n_mfcc`` = 80): torchaudio ``MFCC`` (20
coefficients, ``n_fft=2048``, ``hop_length=512``, 128 mels, dB with ``top_db=80``) and their
deltas (``torchaudio.functional.compute_deltas``), summarised as
``[mean(mfcc), std(mfcc), mean(delta), std(delta)]`` over frames (population std).
The random-init baseline lives in ``evaluate/methods/random_init.py``.

Example:
    >>> mfcc_stats(tone(440, 22050, 2.0), 22050).shape
    (80,)
    >>> mfcc_embed_tracks("labels.csv", "out/emb/mfcc", sample_rate=22050).dim
    80
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio

from audioclr.evaluate.chunks import run_chunked
from audioclr.evaluate.store import EmbeddingSet
from audioclr.evaluate.tracks import Track, open_tracks

N_MFCC = 20
MELKWARGS = {"n_fft": 2048, "hop_length": 512, "n_mels": 128}


@lru_cache(maxsize=4)
def _mfcc_transform(sample_rate: int, n_mfcc: int) -> torchaudio.transforms.MFCC:
    return torchaudio.transforms.MFCC(
        sample_rate=sample_rate, n_mfcc=n_mfcc, melkwargs=dict(MELKWARGS)
    )


def mfcc_stats(x: np.ndarray, sample_rate: int, n_mfcc: int = N_MFCC) -> np.ndarray:
    """``(samples,)`` -> ``(4 * n_mfcc,)`` float32: mean and std of MFCCs and of their deltas."""
    wav = torch.from_numpy(np.asarray(x, dtype=np.float32))
    if wav.shape[0] < MELKWARGS["n_fft"] // 2 + 1:  # reflect padding needs n_fft // 2 samples
        wav = torch.nn.functional.pad(wav, (0, MELKWARGS["n_fft"] // 2 + 1 - wav.shape[0]))
    with torch.no_grad():
        mfcc = _mfcc_transform(sample_rate, n_mfcc)(wav)  # (n_mfcc, frames)
        delta = torchaudio.functional.compute_deltas(mfcc.unsqueeze(0)).squeeze(0)
    parts = [mfcc.mean(1), mfcc.std(1, unbiased=False), delta.mean(1), delta.std(1, unbiased=False)]
    return torch.cat(parts).numpy().astype(np.float32)


def mfcc_embed_track_list(
    tracks: Sequence[Track],
    out_dir: str | Path,
    sample_rate: int,
    meta: dict[str, Any] | None = None,
    progress: bool = True,
) -> EmbeddingSet:
    """MFCC-statistics vectors of ``tracks`` into an embeddings folder (resumable by chunks)."""
    info = {
        "encoder_id": "mfcc-stats",
        "layer": "mfcc",
        "n_mfcc": N_MFCC,
        **MELKWARGS,
        "sample_rate": int(sample_rate),
        **(meta or {}),
    }

    def compute(chunk: Sequence[Track]) -> list[np.ndarray]:
        return [mfcc_stats(t.read(), sample_rate)[None, :] for t in chunk]

    return run_chunked(tracks, compute, out_dir, info, keep_windows=False, progress=progress)


def mfcc_embed_tracks(
    data: str | Path, out_dir: str | Path, sample_rate: int, progress: bool = True
) -> EmbeddingSet:
    """MFCC-statistics vectors of every track of ``data`` (folder, labels CSV or clip cache)."""
    tracks = open_tracks(data, sample_rate)
    return mfcc_embed_track_list(
        tracks, out_dir, sample_rate, {"data": str(Path(data).resolve())}, progress
    )
