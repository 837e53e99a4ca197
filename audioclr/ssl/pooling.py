"""Per-block summaries of an encoder: each block's channel means and standard deviations over time.

The same summary serves the probes (``evaluate/frozen.py``: ``--layer all``, the default
representation) and, with ``simclr.layer=all``, the input of SimCLR's projection head, so the
objective can train the vector the probes read.

Example:
    >>> enc = build_encoder("melcnn", 22050, widths=[8, 16])
    >>> block_stats(enc, torch.zeros(2, enc.input_samples)).shape
    torch.Size([2, 48])
"""

from __future__ import annotations

import torch
from torch import Tensor

from audioclr.ssl.base import Encoder, FrontTransform


def time_stats(fmap: Tensor) -> Tensor:
    """A block's map ``(batch, channels, [freq,] time)`` -> ``(batch, 2 * channels)``: per channel
    the mean and the standard deviation over time (frequency averaged first). A pooled vector
    ``(batch, dim)`` is returned as it is."""
    if fmap.dim() == 2:
        return fmap.float()
    x = fmap.float()
    if x.dim() > 3:
        x = x.flatten(2, -2).mean(2)  # (batch, channels, time)
    return torch.cat([x.mean(-1), x.std(-1, unbiased=False)], dim=1)


def block_stats(encoder: Encoder, x: Tensor, front: FrontTransform | None = None) -> Tensor:
    """``(batch, samples)`` -> every block's :func:`time_stats`, concatenated in layer order
    (the pooled ``embedding`` left out). ``front``: the training edit of the front-end output."""
    feats = encoder.features(x, front)
    return torch.cat([time_stats(feats[n]) for n in list(feats)[:-1]], dim=1)


def block_stats_dim(encoder: Encoder) -> int:
    """The width of :func:`block_stats`, from one silent input in ``eval()`` (no BatchNorm
    statistics change; the encoder's mode is restored)."""
    device = next(encoder.parameters()).device
    was = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(1, int(encoder.input_samples), device=device)
            return int(block_stats(encoder, x).shape[1])
    finally:
        encoder.train(was)
