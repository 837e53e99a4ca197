"""``samplecnn``: CLMR's raw-waveform SampleCNN (Lee et al. 2017; Spijkervet & Burgoyne 2021).

A strided conv (``strides[0]``) then one block per further stride: Conv1d(k=3, pad=1) -> BN ->
ReLU -> MaxPool(stride), then a final Conv1d(k=3) -> BN -> ReLU. With the CLMR defaults (ten
strides of 3, widths 128-128-128-256x6-512 and a 512 final conv) an input of 3^10 = 59049
samples (2.68 s at 22.05 kHz) becomes one 512-d frame. Longer inputs give more frames, which are
averaged (global pooling), so whole tracks can be embedded window by window.

Layer names and shapes (defaults, input L samples): ``conv0`` (batch, 128, L/3),
``block1`` (batch, 128, L/9) ... ``block9`` (batch, 512, L/3^10), ``final``
(batch, 512, L/3^10), ``embedding`` (batch, 512).

Example:
    >>> enc = SampleCNN(16000, strides=[3, 3, 3], widths=[8, 8, 16], final_width=16)
    >>> enc(torch.zeros(2, enc.min_samples)).shape
    torch.Size([2, 16])
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from torch import Tensor, nn

from audioclr.errors import ConfigError
from audioclr.ssl.base import Encoder, ints

CLMR_WIDTHS = [128, 128, 128, 256, 256, 256, 256, 256, 256, 512]


class SampleCNN(Encoder):
    """Raw-waveform encoder: ``(batch, samples >= prod(strides))`` -> ``(batch, final_width)``."""

    name = "samplecnn"

    def __init__(
        self,
        sample_rate: int,
        strides: list[int] | None = None,
        widths: list[int] | None = None,
        final_width: int = 512,
        input_samples: int | None = None,
    ) -> None:
        strides = ints("strides", strides or [3] * 10, minimum=2)
        widths = ints("widths", widths or CLMR_WIDTHS)
        if len(widths) != len(strides):
            raise ConfigError(
                f"encoder key 'widths' needs one entry per stride ({len(strides)}), "
                f"got {len(widths)}"
            )
        if final_width < 1:
            raise ConfigError(f"encoder key 'final_width' must be >= 1, got {final_width}")
        super().__init__(
            sample_rate,
            dict(
                strides=strides, widths=widths, final_width=final_width, input_samples=input_samples
            ),
        )
        self.conv0 = nn.Sequential(
            nn.Conv1d(1, widths[0], kernel_size=strides[0], stride=strides[0], bias=False),
            nn.BatchNorm1d(widths[0]),
            nn.ReLU(inplace=True),
        )
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(widths[i - 1], widths[i], 3, padding=1, bias=False),
                nn.BatchNorm1d(widths[i]),
                nn.ReLU(inplace=True),
                nn.MaxPool1d(strides[i], stride=strides[i]),
            )
            for i in range(1, len(strides))
        )
        self.final = nn.Sequential(
            nn.Conv1d(widths[-1], final_width, 3, padding=1, bias=False),
            nn.BatchNorm1d(final_width),
            nn.ReLU(inplace=True),
        )
        self.output_dim = self.frame_dim = final_width
        self.min_samples = self.frame_hop = math.prod(strides)
        self.input_samples = int(input_samples or self.min_samples)
        if self.input_samples < self.min_samples:
            raise ConfigError(
                f"encoder key 'input_samples' must be >= min_samples="
                f"{self.min_samples}, got {self.input_samples}"
            )
        self.layer_names = (
            ["conv0"] + [f"block{i}" for i in range(1, len(strides))] + ["final", "embedding"]
        )

    def _layers(self, front: Tensor) -> Iterator[tuple[str, Tensor]]:
        h = self.conv0(front.unsqueeze(1))
        yield "conv0", h
        for i, block in enumerate(self.blocks):
            h = block(h)
            yield f"block{i + 1}", h
        h = self.final(h)
        yield "final", h
        yield "embedding", h.mean(dim=2)

    def _to_frames(self, last_map: Tensor) -> Tensor:
        """The ``final`` map ``(batch, final_width, frames)`` as it is."""
        return last_map
