"""The views of one training step: two augmented views per clip, plus LooC's key views.

Every objective sees view a (the query) and view b of each crop pair. An objective that learns
augmentation-sensitive subspaces (LooC, ``ssl/objectives/looc.py``) asks for one more view per
augmentation group ("leave one out"): crop b augmented with view b's parameters except the
group's own, which it shares with view a. The pair (a, key_i) then differs in every transform
but ``i``, so a head whose positive is that pair stays sensitive to transform ``i``.

Parameters are drawn once for views a and b (the same draws as ``augment(x, g)`` on
``cat([a, b])``, so with no groups the views are bit-identical to plain augmentation); the key
views reuse those draws, rearranged, and everything is applied in one batched call.

Example:
    >>> x, params = make_views(augment, a, b, g)                        # (2B, S), (2B, P)
    >>> x, params = make_views(augment, a, b, g, ("pitch", "filter"))   # (4B, S), (4B, P)
    >>> view_a, view_b, key_pitch, key_filter = x.chunk(4)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from audioclr.augment.batched import BatchedAugment, Params
from audioclr.augment.params import applied_params

# the transforms of BatchedAugment whose parameters a LooC key view can share with view a
GROUPS: tuple[str, ...] = (
    "pitch",
    "filter",
    "gain",
    "delay",
    "reverb",
    "polarity",
    "noise",
    "background",
)


def key_params(q: Params, batch: int, group: str) -> Params:
    """The parameters of a key view: view b's rows of ``q`` (rows ``batch..2*batch``) with the
    keys of ``group`` (``<group>.*``) taken from view a's rows (``0..batch``)."""
    prefix = f"{group}."
    return {k: (v[:batch] if k.startswith(prefix) else v[batch : 2 * batch]) for k, v in q.items()}


def make_views(
    augment: BatchedAugment,
    a: Tensor,
    b: Tensor,
    g: torch.Generator,
    groups: Sequence[str] = (),
) -> tuple[Tensor, Tensor]:
    """Augmented views ``((2 + len(groups)) * B, samples)``: view a, view b, then one key view
    per group (crop b, sharing that group's parameters with view a), and the applied parameters
    of every row ``(rows, P)`` (``audioclr.augment.params``).

    ``a``, ``b``: the two crops ``(B, samples)``; ``g``: the step's generator.
    """
    x = torch.cat([a, b])
    if not groups:
        return augment(x, g, return_params=True)
    batch = a.shape[0]
    q = augment.sample_params(2 * batch, g)
    keys = [key_params(q, batch, group) for group in groups]
    # background.partner indexes rows of the raw batch; the first 2B rows are the raw crops of
    # every view, so a key view mixes in the same partner clip as the view it copies from
    q_all = {k: torch.cat([v] + [kq[k] for kq in keys]) for k, v in q.items()}
    y = augment.apply(torch.cat([x] + [b] * len(groups)), q_all, g)
    return y, applied_params(q_all).to(y.device)
