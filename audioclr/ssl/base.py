"""The ``Encoder`` base class every audio encoder derives from (the contract of ssl/encoders).

An encoder maps raw audio ``(batch, samples)`` at ``sample_rate`` to ``(batch, output_dim)``.
It also exposes frame latents for CPC (``frames``) and named intermediate layers
(``features``). Its constructor kwargs are kept in ``kwargs`` (plain types only), so an exported
encoder can be rebuilt exactly with ``build_encoder(name, sample_rate, **kwargs)``.

Example:
    >>> enc = build_encoder("melcnn", 22050, widths=[8, 16])
    >>> enc(torch.zeros(2, enc.input_samples)).shape
    torch.Size([2, 16])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from audioclr.errors import ConfigError

FrontTransform = Callable[[Tensor], Tensor]


class Encoder(nn.Module):
    """Base of every encoder: metadata plus ``forward``/``features``/``frames``.

    Subclasses set ``output_dim``, ``min_samples``, ``input_samples``, ``layer_names``,
    ``frame_dim``, ``frame_hop`` and ``frontend``, and implement ``_layers`` (an ordered walk over
    the named layers, from the front-end output; the last two are the final map and its pooled
    ``embedding``) and ``_to_frames``.
    """

    name: str = "encoder"

    def __init__(self, sample_rate: int, kwargs: dict[str, Any]) -> None:
        super().__init__()
        if not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ConfigError(f"encoder sample_rate must be a positive int, got {sample_rate!r}")
        self.sample_rate = sample_rate
        self.kwargs = dict(kwargs)
        self.output_dim = 0
        self.min_samples = 1
        self.input_samples = 1
        self.frame_dim = 0
        self.frame_hop = 1
        self.layer_names: list[str] = []
        self.frontend: nn.Module = nn.Identity()

    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(batch, samples >= min_samples)``."""
        if x.dim() != 2:
            raise ValueError(f"{self.name} expects (batch, samples), got shape {tuple(x.shape)}")
        if x.shape[1] < self.min_samples:
            raise ValueError(
                f"{self.name} needs at least min_samples={self.min_samples} samples "
                f"({self.min_samples / self.sample_rate:.3f} s at {self.sample_rate} Hz), "
                f"got {x.shape[1]}"
            )

    def features(
        self, x: Tensor, front_transform: FrontTransform | None = None
    ) -> dict[str, Tensor]:
        """Every named layer's output, in ``layer_names`` order; the last is ``forward``'s output.

        Shapes: ``(batch, channels, ...)`` for maps, ``(batch, output_dim)`` for ``embedding``.
        ``front_transform``: as in :meth:`forward`.
        """
        return dict(self._layers(self._front(x, front_transform)))

    def forward(self, x: Tensor, front_transform: FrontTransform | None = None) -> Tensor:
        """``(batch, samples >= min_samples)`` -> ``(batch, output_dim)``.

        ``front_transform`` (training only) edits the front-end output before the body, e.g.
        SpecAugment on melcnn's ``(batch, mels, frames)``.
        """
        *_, (_, embedding) = self._layers(self._front(x, front_transform))
        return embedding

    def frames(self, x: Tensor, front_transform: FrontTransform | None = None) -> Tensor:
        """Frame latents before time pooling: ``(batch, frame_dim, frames)`` (used by CPC)."""
        layers = self._layers(self._front(x, front_transform))
        last_map = next(out for name, out in layers if name == self.layer_names[-2])
        return self._to_frames(last_map)

    def _front(self, x: Tensor, front_transform: FrontTransform | None) -> Tensor:
        self.check_input(x)
        front = self.frontend(x)
        return front if front_transform is None else front_transform(front)

    def _layers(self, front: Tensor) -> Iterator[tuple[str, Tensor]]:  # pragma: no cover
        """Yield ``(name, output)`` for every layer, given the front-end output."""
        raise NotImplementedError

    def _to_frames(self, last_map: Tensor) -> Tensor:  # pragma: no cover
        """The last map before pooling -> ``(batch, frame_dim, frames)``."""
        raise NotImplementedError


def conv_out_frames(n: int, factors: list[int]) -> int:
    """Length after successive floor divisions by ``factors`` (max-pool arithmetic)."""
    for f in factors:
        n //= f
    return n


def ints(key: str, value: Any, minimum: int = 1) -> list[int]:
    """Validate a list of ints (each >= ``minimum``), raising ``ConfigError`` naming ``key``."""
    try:
        out = [int(v) for v in value]
    except (TypeError, ValueError):
        raise ConfigError(
            f"encoder key '{key}' must be a list of integers, got {value!r}"
        ) from None
    if not out or any(v < minimum for v in out) or any(int(v) != v for v in value):
        raise ConfigError(
            f"encoder key '{key}' must be a non-empty list of ints >= {minimum}, "
            f"got {list(value)!r}"
        )
    return out


__all__ = ["Encoder", "FrontTransform", "conv_out_frames", "ints", "torch"]
