"""The supervised-from-scratch baseline: same architecture, fresh weights, trained on the labels.

The encoder (a fair random init: ``methods/random_init.fresh_encoder``, fresh weights with
BatchNorm statistics of the training audio) plus a linear head is trained with
cross-entropy (single-label) or BCE (multi-label) on random crops of ``input_samples`` from the
training tracks (one crop per track per epoch, Adam), then frozen and embedded like any encoder.
It uses all training labels (not the probe's label fractions): an upper reference, not a probe.
The training loop is the fine-tuning heads' (``finetune.fit_classifier``) with fixed epochs: the
``finetune`` head on random-init weights is this training, probed end to end.
Training tracks are held in memory, so this is meant for small labelled sets.

Example:
    >>> loaded = load_encoder("enc.pt", random_init_seed=0)
    >>> trained, losses = train_supervised(loaded, waves, targets, False, 5, epochs=20)
    >>> trained.encoder_id != loaded.encoder_id
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from audioclr.evaluate.finetune import FitSettings, fit_classifier

if TYPE_CHECKING:
    from audioclr.ssl.export import LoadedEncoder


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

    settings = FitSettings(
        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device, progress=progress
    )
    model, history, _, _ = fit_classifier(loaded, waves, targets, multilabel, n_classes, settings)
    enc = model.encoder.eval()
    trained = dataclasses.replace(loaded, encoder=enc, encoder_id=weights_id(enc.state_dict()))
    return trained, history
