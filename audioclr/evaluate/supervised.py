"""The supervised-from-scratch baseline: same architecture, fresh weights, trained on the labels.

The encoder (a fair random init: ``methods/random_init.fresh_encoder``, fresh weights with
BatchNorm statistics of the training audio) plus a linear head is trained with
cross-entropy (single-label) or BCE (multi-label) on random crops of ``input_samples`` from the
training tracks (one crop per track per epoch, Adam), then frozen and embedded like any encoder.
It uses all training labels (not the probe's label fractions): an upper reference, not a probe.
Training tracks are held in memory, so this is meant for small labelled sets.

Example:
    >>> loaded = load_encoder("enc.pt", random_init_seed=0)
    >>> trained, losses = train_supervised(loaded, waves, targets, False, 5, epochs=20)
    >>> trained.encoder_id != loaded.encoder_id
    True
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from audioclr.evaluate.frozen import resolve_device

if TYPE_CHECKING:
    from audioclr.ssl.export import LoadedEncoder


def random_crop(x: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """``(samples,)`` -> ``(length,)``: a random crop, or zero-padded when shorter."""
    if x.shape[0] <= length:
        return np.pad(x, (0, length - x.shape[0]))
    start = int(rng.integers(0, x.shape[0] - length + 1))
    return x[start : start + length]


def _head(dim: int, classes: int, seed: int) -> nn.Linear:
    head = nn.Linear(dim, classes)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bound = 1 / np.sqrt(dim)
        head.weight.copy_((torch.rand(head.weight.shape, generator=gen) * 2 - 1) * bound)
        head.bias.zero_()
    return head


def train_supervised(
    loaded: LoadedEncoder,
    waves: Sequence[np.ndarray],
    targets: np.ndarray,
    multilabel: bool,
    n_classes: int,
    epochs: int = 20,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
) -> tuple[Any, list[float]]:
    """Train a copy of ``loaded.encoder`` + a linear head on ``waves`` and ``targets``.

    ``waves``: ``(samples,)`` float32 each; ``targets``: ``(n,)`` class indices or
    ``(n, classes)`` multi-hot. Returns (a copy of ``loaded`` holding the trained encoder in
    ``eval()`` with its new ``encoder_id``, the mean training loss of each epoch).
    """
    from audioclr.ssl.export import weights_id

    dev = resolve_device(device)
    enc = copy.deepcopy(loaded.encoder).to(dev).train()
    head = _head(int(enc.output_dim), n_classes, seed).to(dev)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=lr)
    loss_fn = nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss()
    y_all = torch.as_tensor(np.asarray(targets))
    y_all = y_all.float() if multilabel else y_all.long()
    rng = np.random.default_rng(seed)
    length = int(loaded.input_samples)
    history: list[float] = []
    for _ in tqdm(range(epochs), desc="supervised", unit="epoch", disable=not progress):
        order, losses = rng.permutation(len(waves)), []
        for lo in range(0, len(order), batch_size):
            idx = order[lo : lo + batch_size]
            if len(idx) < 2 < len(order):  # BatchNorm in training needs two examples
                continue
            x = np.stack([random_crop(np.asarray(waves[i], np.float32), length, rng) for i in idx])
            logits = head(enc(torch.from_numpy(x).to(dev)))
            loss = loss_fn(logits, y_all[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)))
    enc.eval()
    trained = dataclasses.replace(loaded, encoder=enc, encoder_id=weights_id(enc.state_dict()))
    return trained, history
