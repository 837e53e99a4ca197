"""A fair random-init: BatchNorm running statistics re-estimated on training audio, no labels.

A freshly initialised encoder keeps BatchNorm running statistics at their defaults (mean 0,
variance 1) while its log-mel inputs have a mean near -4 and a std near 3: in ``eval()`` many
units then sit below zero before every ReLU and their embedding dimensions are dead on real
clips. Re-estimating the running statistics on the task's training audio (as SWA's
``update_bn`` does for averaged weights) gives random features their fair chance. Weights are
not changed and no label is read.

Only the BatchNorm layers run in training mode (dropout and the rest stay in ``eval()``), under
``no_grad``; each batch's statistics enter a cumulative average weighted by its number of
windows (PyTorch's ``momentum=None`` average, weighted so a short last batch counts for what it
holds). The result is a copy; the given encoder is never changed.

Example:
    >>> fresh = load_encoder("enc.pt", random_init_seed=0)
    >>> fair, info = reestimated(fresh, train_tracks, hop_samples=None, batch_size=64)
    >>> info, fair.encoder_id != fresh.encoder_id
    ({'train_tracks': 18, 'windows': 72}, True)
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from audioclr.errors import AudioclrError
from audioclr.evaluate.embed import cut_windows
from audioclr.evaluate.frozen import resolve_device
from audioclr.evaluate.tracks import Track

if TYPE_CHECKING:
    from audioclr.ssl.export import LoadedEncoder

BATCHNORM = nn.modules.batchnorm._BatchNorm


def reestimate_batchnorm(encoder: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """A copy of ``encoder`` (in ``eval()``) whose BatchNorm statistics are those of ``batches``.

    ``batches``: ``(batch, samples)`` tensors on the encoder's device. Raises ``ValueError`` when
    ``batches`` is empty (the statistics would be undefined).
    """
    enc = copy.deepcopy(encoder).eval()
    norms = [m for m in enc.modules() if isinstance(m, BATCHNORM)]
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.train()
    seen = 0
    with torch.no_grad():
        for x in batches:
            n = int(x.shape[0])
            for bn in norms:
                bn.momentum = n / (seen + n)  # running = weighted mean over every window so far
            enc(x)
            seen += n
    for bn, momentum in zip(norms, momenta, strict=True):
        bn.momentum = momentum
    if seen == 0:
        raise ValueError("no windows to re-estimate BatchNorm statistics from")
    return enc.eval()


def window_batches(
    tracks: Sequence[Track],
    window: int,
    hop: int,
    min_samples: int,
    batch_size: int,
    device: torch.device | str = "cpu",
) -> Iterator[torch.Tensor]:
    """``(batch, samples)`` batches of the windows of ``tracks``, as ``embed`` cuts them.

    Tracks are read one at a time; windows of equal length are batched together (short tracks
    give one shorter window), so at most one partial batch per window length is held.
    """
    pending: dict[int, list[np.ndarray]] = {}
    for track in tracks:
        for w in cut_windows(np.asarray(track.read(), np.float32), window, hop, min_samples):
            group = pending.setdefault(w.shape[0], [])
            group.append(w)
            if len(group) == batch_size:
                yield torch.from_numpy(np.stack(group)).to(device)
                group.clear()
    for group in pending.values():
        if group:
            yield torch.from_numpy(np.stack(group)).to(device)


def reestimated(
    loaded: LoadedEncoder,
    tracks: Sequence[Track],
    hop_samples: int | None = None,
    batch_size: int = 64,
    device: str = "cpu",
) -> tuple[Any, dict[str, int]]:
    """``loaded`` with BatchNorm statistics re-estimated on ``tracks`` (the training split only).

    Returns (a copy of ``loaded`` with the new encoder and its ``encoder_id``, ``{"train_tracks",
    "windows"}``). Raises ``AudioclrError`` when ``tracks`` is empty.
    """
    from audioclr.ssl.export import weights_id

    if not tracks:
        raise AudioclrError(
            "BatchNorm re-estimation needs training tracks, got none",
            hint="give the task a 'train' split",
        )
    dev = resolve_device(device)
    window = int(loaded.input_samples)
    min_samples = int(getattr(loaded.encoder, "min_samples", 1))
    counted = [0]

    def batches() -> Iterator[torch.Tensor]:
        hop = hop_samples or window
        for x in window_batches(tracks, window, hop, min_samples, batch_size, dev):
            counted[0] += int(x.shape[0])
            yield x

    enc = reestimate_batchnorm(copy.deepcopy(loaded.encoder).to(dev), batches()).cpu()
    fair = dataclasses.replace(loaded, encoder=enc, encoder_id=weights_id(enc.state_dict()))
    return fair, {"train_tracks": len(tracks), "windows": counted[0]}
