"""Representation-quality figures logged during pretraining (pure tensor functions).

- ``positive_accuracy``: how often a view's positive is the nearest of the 2N-1 other views.
- ``embedding_std``: mean per-dimension std of l2-normalised embeddings times sqrt(dim)
  (about 1 when healthy, near 0 on collapse; the SimSiam collapse alarm).
- ``alignment`` / ``uniformity``: Wang & Isola (2020), on l2-normalised embeddings.

Example:
    >>> z_a, z_b = torch.randn(8, 16), torch.randn(8, 16)
    >>> 0.0 <= positive_accuracy(z_a, z_b) <= 1.0
    True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def positive_accuracy(z_a: Tensor, z_b: Tensor) -> Tensor:
    """Top-1 accuracy of picking the positive among the other 2N-1 views (cosine similarity).

    ``z_a``, ``z_b``: ``(batch, dim)``. Chance level is ``1 / (2N - 1)``.
    """
    z = F.normalize(torch.cat([z_a, z_b]).float(), dim=1)
    n = z_a.shape[0]
    sim = z @ z.T
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return (sim.argmax(dim=1) == target).float().mean()


def embedding_std(z: Tensor) -> Tensor:
    """``(batch, dim)`` -> scalar: mean per-dimension std of normalised ``z``, times sqrt(dim)."""
    z = F.normalize(z.float(), dim=1)
    return z.std(dim=0).mean() * math.sqrt(z.shape[1])


def alignment(z_a: Tensor, z_b: Tensor, alpha: float = 2.0) -> Tensor:
    """Mean ``||f(a) - f(b)||^alpha`` over positive pairs (lower is better)."""
    a, b = F.normalize(z_a.float(), dim=1), F.normalize(z_b.float(), dim=1)
    return (a - b).norm(dim=1).pow(alpha).mean()


def uniformity(z: Tensor, t: float = 2.0) -> Tensor:
    """``log mean exp(-t ||f(x) - f(y)||^2)`` over distinct pairs (lower is more uniform)."""
    z = F.normalize(z.float(), dim=1)
    return torch.pdist(z).pow(2).mul(-t).exp().mean().log()
