"""NT-Xent (lightly) and our CPC InfoNCE against numpy written from the papers; metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from lightly.loss import NTXentLoss

from audioclr.ssl.metrics import alignment, embedding_std, positive_accuracy, uniformity
from audioclr.ssl.objectives.cpc import CPCHead, infonce_all, infonce_sampled, sample_negatives


def np_log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def ntxent_numpy(a: np.ndarray, b: np.ndarray, tau: float) -> float:
    """SimCLR eq. 1: mean over all 2N anchors of -log softmax over the other 2N-1 views."""
    z = np.concatenate([a, b]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(a)
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sims = np.array([z[i] @ z[k] / tau for k in range(2 * n) if k != i])
        others = [k for k in range(2 * n) if k != i]
        total -= np_log_softmax(sims)[others.index(j)]
    return total / (2 * n)


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_ntxent_equals_numpy_reference(tau):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    ours = NTXentLoss(temperature=tau, gather_distributed=True)(a, b).item()
    assert ours == pytest.approx(ntxent_numpy(a.numpy(), b.numpy(), tau), rel=1e-5)
    # symmetric in the two views
    assert NTXentLoss(tau)(b, a).item() == pytest.approx(ours, rel=1e-5)


@pytest.mark.parametrize("n", [2, 7, 16])
def test_ntxent_of_identical_embeddings_is_log_2n_minus_1(n):
    z = torch.ones(n, 8)
    assert NTXentLoss(0.5)(z, z.clone()).item() == pytest.approx(math.log(2 * n - 1), rel=1e-5)


def cpc_numpy(pred: np.ndarray, z: np.ndarray, k: int, neg: np.ndarray | None) -> float:
    """InfoNCE (CPC eq. 4): -log exp(p.z_pos) / sum over candidates, averaged."""
    b, t, d = z.shape
    flat = z.reshape(-1, d)
    losses = []
    for bi in range(b):
        for ti in range(t - k):
            p = pred[bi, ti]
            pos = bi * t + ti + k
            row = bi * (t - k) + ti
            cand = np.arange(b * t) if neg is None else np.concatenate([[pos], neg[row]])
            scores = flat[cand] @ p
            target = pos if neg is None else 0
            losses.append(-np_log_softmax(scores)[target])
    return float(np.mean(losses))


def test_cpc_infonce_all_and_sampled_equal_numpy():
    g = torch.Generator().manual_seed(3)
    b, t, d, k = 3, 7, 4, 2
    z = torch.randn(b, t, d, generator=g)
    pred = torch.randn(b, t - k, d, generator=g)
    loss, acc = infonce_all(pred, z, k)
    assert loss.item() == pytest.approx(cpc_numpy(pred.numpy(), z.numpy(), k, None), rel=1e-5)
    idx = sample_negatives(b, t, k, 5, g)
    loss_s, _ = infonce_sampled(pred, z, k, idx)
    ref = cpc_numpy(pred.numpy(), z.numpy(), k, idx.numpy())
    assert loss_s.item() == pytest.approx(ref, rel=1e-5)


def test_negative_sampling_never_picks_the_positive_and_spans_clips():
    g = torch.Generator().manual_seed(0)
    b, t, k = 4, 10, 3
    idx = sample_negatives(b, t, k, 50, g)
    pos = (np.arange(b)[:, None] * t + np.arange(k, t)).reshape(-1, 1)
    assert idx.shape == (b * (t - k), 50)
    assert not (idx.numpy() == pos).any()
    assert idx.min() >= 0 and idx.max() < b * t
    # negatives come from other clips as well as other time steps of the same clip
    other_clip = (idx.numpy() // t) != (pos // t)
    assert 0.5 < other_clip.mean() < 0.95


def test_cpc_head_learns_a_predictable_sequence():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    head = CPCHead(latent_dim=8, context_dim=16, steps=2, num_negatives=0)
    basis = torch.randn(6, 8)
    z = basis[torch.arange(12) % 6].expand(4, 12, 8).clone()  # a cycle: z_{t+k} predictable
    z += 0.05 * torch.randn(z.shape, generator=g)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    first, _ = head(z)
    for _ in range(60):
        loss, acc = head(z)
        opt.zero_grad()
        loss.backward()
        opt.step()
    # each target appears 8 times among the 48 candidates (4 clips x 2 cycles), so the best
    # possible InfoNCE is log(8); untrained it is near log(48)
    floor = math.log(8)
    assert first.item() > floor + 1.0
    assert loss.item() < floor + 0.1


def test_metrics_equal_numpy():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    an = a.numpy() / np.linalg.norm(a.numpy(), axis=1, keepdims=True)
    bn = b.numpy() / np.linalg.norm(b.numpy(), axis=1, keepdims=True)
    assert alignment(a, b).item() == pytest.approx(np.mean(np.sum((an - bn) ** 2, 1)), rel=1e-5)
    d2 = [np.sum((an[i] - an[j]) ** 2) for i in range(5) for j in range(i + 1, 5)]
    assert uniformity(a).item() == pytest.approx(
        np.log(np.mean(np.exp(-2 * np.array(d2)))), rel=1e-5
    )
    assert embedding_std(a).item() == pytest.approx(an.std(0, ddof=1).mean() * 2, rel=1e-5)
    # positives identical -> accuracy 1; a collapsed batch -> std 0
    assert positive_accuracy(a, a + 1e-4).item() == 1.0
    assert embedding_std(torch.ones(6, 4)).item() == pytest.approx(0.0, abs=1e-6)
    z = np.concatenate([an, bn])
    sim = z @ z.T
    np.fill_diagonal(sim, -np.inf)
    expect = np.mean(sim.argmax(1) == np.r_[np.arange(5, 10), np.arange(5)])
    assert positive_accuracy(a, b).item() == pytest.approx(expect)
