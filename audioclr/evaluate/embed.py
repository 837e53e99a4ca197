"""Frozen embeddings: the encoder in ``eval()``, no grad, window by window, no augmentation.

A track is cut into windows of the encoder's ``input_samples`` with a hop (default: the window);
a last partial window is covered by one more window aligned to the track's end; a track shorter
than a window is one window of its own length, zero-padded up to ``min_samples``. Windows of many
tracks are batched together and averaged per track.

Layers: ``"last"`` is ``encoder(x)`` (``output_dim``); a name from ``layer_names`` is that layer
averaged over time/frequency (its channels); ``"all"`` concatenates every intermediate layer (all of
``layer_names`` but the last, which is ``forward``'s output) so averaged (Choi et al. 2017), size
``sum(channels of layer_names[:-1])``: 480 for the default melcnn (32+64+128+256);
see :func:`layer_dim`.

Example:
    >>> loaded = load_encoder("enc.pt")
    >>> embed_waveform(loaded, np.zeros(44100, "float32"), layer="all").shape
    (480,)
    >>> embed_tracks(loaded, "my_music/", "emb/", hop_seconds=1.0).vectors.shape
    (120, 512)
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from audioclr.errors import ConfigError
from audioclr.evaluate.chunks import run_chunked
from audioclr.evaluate.store import EmbeddingSet
from audioclr.evaluate.tracks import Track, open_tracks


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device {device!r} requested but CUDA is not available", hint="use --device cpu"
        )
    return torch.device(device)


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


def _check_layer(loaded: Any, layer: str) -> None:
    if layer not in ("last", "all") and layer not in loaded.layer_names:
        raise ConfigError(
            f"unknown layer {layer!r}",
            hint=f"choose 'last', 'all' or one of {list(loaded.layer_names)}",
        )


def layer_vectors(encoder: torch.nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """``(batch, samples)`` -> ``(batch, dim)`` for ``layer`` (``last``, a layer name, ``all``)."""
    if layer == "last":
        return encoder(x).float()
    feats = encoder.features(x)
    names = list(feats)[:-1] if layer == "all" else [layer]
    pooled = [
        feats[n].float().flatten(2).mean(-1) if feats[n].dim() > 2 else feats[n].float()
        for n in names
    ]
    return torch.cat(pooled, dim=1)


def layer_dim(loaded: Any, layer: str) -> int:
    """Size of ``layer``: ``output_dim`` for last, a layer's channels, their sum for all."""
    _check_layer(loaded, layer)
    enc = loaded.encoder
    device = next(enc.parameters()).device
    with torch.no_grad():
        x = torch.zeros(1, int(loaded.input_samples), device=device)
        was = enc.training
        enc.eval()
        dim = int(layer_vectors(enc, x, layer).shape[1])
        enc.train(was)
    return dim


_FAST: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def inference_copy(encoder: nn.Module, device: torch.device) -> nn.Module:
    """A frozen copy for embedding: eval, conv+BatchNorm fused, channels-last, on ``device``.

    Same outputs as ``encoder.eval()`` up to float rounding; the given encoder is not touched.
    Memoised per encoder until any of its parameters or buffers change (tensor version counters).
    """
    state = tuple(t._version for t in [*encoder.parameters(), *encoder.buffers()])
    hit = _FAST.get(encoder)
    if hit is not None and hit[0] == (state, str(device)):
        return hit[1]
    fast = copy.deepcopy(encoder).eval()
    for mod in fast.modules():
        if isinstance(mod, nn.Sequential):
            for i in range(len(mod) - 1):
                if isinstance(mod[i], nn.Conv1d | nn.Conv2d) and isinstance(
                    mod[i + 1], nn.BatchNorm1d | nn.BatchNorm2d
                ):
                    mod[i], mod[i + 1] = fuse_conv_bn_eval(mod[i], mod[i + 1]), nn.Identity()
    fast = fast.to(device).to(memory_format=torch.channels_last).requires_grad_(False)
    _FAST[encoder] = ((state, str(device)), fast)
    return fast


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
    loaded: Any,
    arrays: Sequence[np.ndarray],
    layer: str = "last",
    hop_samples: int | None = None,
    batch_size: int = 64,
    device: str = "cpu",
) -> list[np.ndarray]:
    """Per-window embeddings of several waveforms, windows of all of them batched together.

    ``arrays``: ``(samples,)`` float32 each -> one ``(windows, dim)`` array each.
    """
    _check_layer(loaded, layer)
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
    loaded: Any,
    x: np.ndarray,
    layer: str = "last",
    hop_samples: int | None = None,
    batch_size: int = 64,
    device: str = "cpu",
) -> np.ndarray:
    """``(samples,)`` -> ``(dim,)``: the mean of the track's window embeddings."""
    return embed_windows(loaded, [x], layer, hop_samples, batch_size, device)[0].mean(axis=0)


def embed_meta(
    loaded: Any, layer: str, hop_samples: int, encoder_path: str | None = None
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
    loaded: Any,
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
) -> EmbeddingSet:
    """:func:`embed_tracks` on an explicit list of :class:`Track` (resumable by chunks)."""
    _check_layer(loaded, layer)
    if hop_seconds is not None and hop_seconds <= 0:
        raise ConfigError(
            f"hop_seconds must be > 0, got {hop_seconds}", hint="e.g. --hop-seconds 1.5"
        )
    hop = int(round(hop_seconds * loaded.sample_rate)) if hop_seconds else int(loaded.input_samples)
    info = {**embed_meta(loaded, layer, hop), **(meta or {})}

    def compute(chunk: Sequence[Track]) -> list[np.ndarray]:
        return embed_windows(loaded, [t.read() for t in chunk], layer, hop, batch_size, device)

    return run_chunked(tracks, compute, out_dir, info, keep_windows, chunk_size, progress)


def embed_tracks(
    loaded: Any,
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
