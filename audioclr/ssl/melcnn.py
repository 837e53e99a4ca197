"""``melcnn``: log-mel front-end plus a compact 2D CNN, the fast default encoder on CPU.

Blocks are Conv3x3 -> BatchNorm -> ReLU -> MaxPool(2 in frequency, ``time_strides[i]`` in time).
Frame latents for CPC are the last block averaged over frequency; the embedding is their mean
over time (global pooling, so any input of at least ``min_samples`` works). ``freq_bands`` > 1
keeps that many frequency bands of the last map in the embedding (each band's mean over its
frequencies and time; ``output_dim = widths[-1] * freq_bands``), so the objective's input says
where in frequency a channel fired, not only that it did.

Layer names and shapes (defaults: widths 32-64-128-256, 64 mels, hop 512, time strides 2-2-2-2):
``block1`` (batch, 32, 32, F/2) ... ``block4`` (batch, 256, 4, F/16), ``embedding``
(batch, 256), where F = 1 + samples // hop_length.

Example:
    >>> enc = MelCNN(22050, widths=[8, 16], n_mels=16)
    >>> [k for k in enc.features(torch.zeros(1, enc.input_samples))]
    ['block1', 'block2', 'embedding']
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from torch import Tensor, nn

from audioclr.errors import ConfigError
from audioclr.ssl.base import Encoder, ints
from audioclr.ssl.frontend import LogMel


def conv_block(c_in: int, c_out: int, time_stride: int) -> nn.Sequential:
    """Conv3x3 -> BN -> ReLU -> MaxPool((2, time_stride)) on ``(batch, c, mels, frames)``."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=(2, time_stride), stride=(2, time_stride)),
    )


class MelCNN(Encoder):
    """Log-mel + CNN encoder: ``(batch, samples)`` -> ``(batch, widths[-1])``."""

    name = "melcnn"

    def __init__(
        self,
        sample_rate: int,
        widths: list[int] = (32, 64, 128, 256),
        time_strides: list[int] | None = None,
        n_fft: int = 1024,
        hop_length: int = 512,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        input_samples: int | None = None,
        freq_bands: int = 1,
    ) -> None:
        widths = ints("widths", widths)
        time_strides = ints("time_strides", time_strides or [2] * len(widths))
        if len(time_strides) != len(widths):
            raise ConfigError(
                f"encoder key 'time_strides' needs one entry per width "
                f"({len(widths)}), got {time_strides}"
            )
        if n_mels < 2 ** len(widths):
            raise ConfigError(
                f"encoder key 'n_mels' must be >= 2**len(widths) = {2 ** len(widths)}, got {n_mels}"
            )
        last_freqs = n_mels // 2 ** len(widths)  # the last map's frequency bins
        if not isinstance(freq_bands, int) or freq_bands < 1 or last_freqs % freq_bands:
            raise ConfigError(
                f"encoder key 'freq_bands' must be a positive divisor of the last map's "
                f"{last_freqs} frequency bins (n_mels // 2**len(widths)), got {freq_bands!r}"
            )
        super().__init__(
            sample_rate,
            dict(
                widths=widths,
                time_strides=time_strides,
                n_fft=n_fft,
                hop_length=hop_length,
                n_mels=n_mels,
                f_min=f_min,
                f_max=f_max,
                input_samples=input_samples,
                freq_bands=freq_bands,
            ),
        )
        self.frontend = LogMel(sample_rate, n_fft, hop_length, n_mels, f_min, f_max)
        self.input_norm = nn.BatchNorm2d(1)
        chans = [1, *widths]
        self.blocks = nn.ModuleList(
            conv_block(chans[i], chans[i + 1], time_strides[i]) for i in range(len(widths))
        )
        self.freq_bands = freq_bands
        self.frame_dim = widths[-1]
        self.output_dim = widths[-1] * freq_bands
        self.frame_hop = hop_length * math.prod(time_strides)
        min_frames = math.prod(time_strides)
        self.min_samples = max((min_frames - 1) * hop_length, n_fft // 2 + 1)
        default_input = round(sample_rate * 59049 / 22050)  # 2.68 s, the CLMR window
        self.input_samples = int(input_samples or default_input)
        if self.input_samples < self.min_samples:
            raise ConfigError(
                f"encoder key 'input_samples' must be >= min_samples="
                f"{self.min_samples}, got {self.input_samples}"
            )
        self.layer_names = [f"block{i + 1}" for i in range(len(widths))] + ["embedding"]

    def _layers(self, front: Tensor) -> Iterator[tuple[str, Tensor]]:
        h = self.input_norm(front.unsqueeze(1))
        for i, block in enumerate(self.blocks):
            h = block(h)
            yield f"block{i + 1}", h
        yield "embedding", nn.functional.adaptive_avg_pool2d(h, (self.freq_bands, 1)).flatten(1)

    def _to_frames(self, last_map: Tensor) -> Tensor:
        """``(batch, c, mels', frames')`` -> ``(batch, c, frames')`` (mean over frequency)."""
        return last_map.mean(dim=2)
