"""Frozen embeddings: the encoder in ``eval()``, no grad, window by window, no augmentation.

A track is cut into windows of the encoder's ``input_samples`` with a hop (default: the window);
a last partial window is covered by one more window aligned to the track's end; a track shorter
than a window is one window of its own length, zero-padded up to ``min_samples``. Windows of many
tracks are batched together and averaged per track.

Layers: ``"last"`` is ``encoder(x)`` (``output_dim``); a name from ``layer_names`` is that
block's channel means and standard deviations over time (frequency averaged first); ``"all"`` (the
default) concatenates those of every block (all of ``layer_names`` but the last, which is
``forward``'s output; Choi et al. 2017), size ``2 * sum(channels)``: 960 for the default melcnn
(2 x (32+64+128+256)); see :func:`layer_dim` and ``frozen.layer_slices``.

Example:
    >>> loaded = load_encoder("enc.pt")
    >>> embed_waveform(loaded, np.zeros(44100, "float32"), layer="all").shape
    (960,)
    >>> embed_tracks(loaded, "my_music/", "emb/", hop_seconds=1.0).vectors.shape
    (120, 512)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from audioclr.errors import ConfigError
from audioclr.evaluate.chunks import run_chunked
from audioclr.evaluate.frozen import (  # noqa: F401  (re-exported: part of the embed API)
    check_layer,
    inference_copy,
    layer_dim,
    layer_vectors,
    resolve_device,
)
from audioclr.evaluate.store import EmbeddingSet
from audioclr.evaluate.tracks import Track, open_tracks

if TYPE_CHECKING:
    from audioclr.ssl.export import LoadedEncoder


def window_starts(num_samples: int, window: int, hop: int) -> list[int]:
    """Window start offsets; the last window ends at the track's end. ``[0]`` for short tracks."""
    if num_samples <= window:
        return [0]
    starts = list(range(0, num_samples - window + 1, hop))
    if starts[-1] + window < num_samples:
        starts.append(num_samples - window)
    return starts


def cut_windows(x: np.ndarray, window: int, hop: int, min_samples: int) -> list[np.ndarray]:
    """``(samples,)`` -> ``(window,)`` windows, or one short window padded to ``min_samples``."""
    if x.shape[0] < window:
        return [np.pad(x, (0, max(0, min_samples - x.shape[0])))]
    return [x[s : s + window] for s in window_starts(x.shape[0], window, hop)]


def _run_batches(
    enc: torch.nn.Module,
    windows: list[np.ndarray],
    layer: str,
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """Equal-length windows -> ``(windows, dim)``."""
    outs = []
    for lo in range(0, len(windows), batch_size):
        x = torch.from_numpy(np.stack(windows[lo : lo + batch_size])).to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
            outs.append(layer_vectors(enc, x, layer).float().cpu().numpy())
    return np.concatenate(outs, axis=0)


def embed_windows(
    loaded: LoadedEncoder,
    arrays: Sequence[np.ndarray],
    layer: str = "last",
    hop_samples: int | None = None,
    batch_size: int = 64,
    device: str = "cpu",
) -> list[np.ndarray]:
    """Per-window embeddings of several waveforms, windows of all of them batched together.

    ``arrays``: ``(samples,)`` float32 each -> one ``(windows, dim)`` array each.
    """
    check_layer(loaded, layer)
    window = int(loaded.input_samples)
    hop = int(hop_samples or window)
    if hop <= 0:
        raise ConfigError(f"hop must be > 0 samples, got {hop}", hint="use --hop-seconds > 0")
    min_samples = int(getattr(loaded.encoder, "min_samples", 1))
    dev = resolve_device(device)
    enc = inference_copy(loaded.encoder, dev)
    cut = [cut_windows(np.asarray(a, dtype=np.float32), window, hop, min_samples) for a in arrays]
    flat = [(t, k, w) for t, ws in enumerate(cut) for k, w in enumerate(ws)]
    results: list[list[np.ndarray | None]] = [[None] * len(ws) for ws in cut]
    by_len: dict[int, list[tuple[int, int, np.ndarray]]] = {}
    for item in flat:
        by_len.setdefault(item[2].shape[0], []).append(item)
    with torch.inference_mode():
        for group in by_len.values():
            vecs = _run_batches(enc, [w for _, _, w in group], layer, batch_size, dev)
            for (t, k, _), v in zip(group, vecs, strict=True):
                results[t][k] = v
    return [np.stack(r).astype(np.float32) for r in results]  # type: ignore[arg-type]


def embed_waveform(
    loaded: LoadedEncoder,
    x: np.ndarray,
    layer: str = "last",
    hop_samples: int | None = None,
    batch_size: int = 64,
    device: str = "cpu",
) -> np.ndarray:
    """``(samples,)`` -> ``(dim,)``: the mean of the track's window embeddings."""
    return embed_windows(loaded, [x], layer, hop_samples, batch_size, device)[0].mean(axis=0)


def embed_meta(
    loaded: LoadedEncoder, layer: str, hop_samples: int, encoder_path: str | None = None
) -> dict[str, Any]:
    """Provenance stored with the vectors."""
    return {
        "encoder_id": loaded.encoder_id,
        "encoder_path": encoder_path,
        "layer": layer,
        "hop_samples": int(hop_samples),
        "window_samples": int(loaded.input_samples),
        "sample_rate": int(loaded.sample_rate),
    }


def embed_track_list(
    loaded: LoadedEncoder,
    tracks: Sequence[Track],
    out_dir: str | Path,
    layer: str = "last",
    hop_seconds: float | None = None,
    batch_size: int = 64,
    keep_windows: bool = False,
    device: str = "cpu",
    meta: dict[str, Any] | None = None,
    chunk_size: int = 64,
    progress: bool = True,
    max_unreadable: float = 1.0,
) -> EmbeddingSet:
    """:func:`embed_tracks` on an explicit list of :class:`Track` (resumable by chunks).

    Unreadable files are skipped and listed in ``meta["skipped"]``; more than ``max_unreadable``
    of them (a share of ``tracks``) is an ``AudioReadError`` listing them. Under ``torchrun``
    each process embeds its share and rank 0 writes the folder (``chunks.py``).
    """
    check_layer(loaded, layer)
    if hop_seconds is not None and hop_seconds <= 0:
        raise ConfigError(
            f"hop_seconds must be > 0, got {hop_seconds}", hint="e.g. --hop-seconds 1.5"
        )
    hop = int(round(hop_seconds * loaded.sample_rate)) if hop_seconds else int(loaded.input_samples)
    info = {**embed_meta(loaded, layer, hop), **(meta or {})}

    def compute(chunk: Sequence[Track]) -> list[np.ndarray]:
        return embed_windows(loaded, [t.read() for t in chunk], layer, hop, batch_size, device)

    return run_chunked(
        tracks, compute, out_dir, info, keep_windows, chunk_size, progress, max_unreadable
    )


def embed_tracks(
    loaded: LoadedEncoder,
    data: str | Path,
    out_dir: str | Path,
    layer: str = "last",
    hop_seconds: float | None = None,
    batch_size: int = 64,
    keep_windows: bool = False,
    device: str = "cpu",
    progress: bool = True,
    meta: dict[str, Any] | None = None,
) -> EmbeddingSet:
    """Embed every track of ``data`` (audio folder, labels CSV, or clip cache) into ``out_dir``."""
    tracks = open_tracks(data, int(loaded.sample_rate))
    extra = {"data": str(Path(data).resolve()), **(meta or {})}
    return embed_track_list(
        loaded,
        tracks,
        out_dir,
        layer,
        hop_seconds,
        batch_size,
        keep_windows,
        device,
        extra,
        progress=progress,
    )
