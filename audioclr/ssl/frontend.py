"""Log-mel front-end computed on the device (torchaudio), carried inside exported encoders.

The STFT window and the mel filterbank are buffers of ``torchaudio.transforms.MelSpectrogram``,
so they move with ``.to(device)`` and are saved in the encoder's state_dict. The front-end
always runs in float32 (outside autocast): log of tiny mel energies underflows in half precision.

Example:
    >>> fe = LogMel(22050, n_fft=1024, hop_length=512, n_mels=64)
    >>> fe(torch.zeros(2, 22050)).shape       # (batch, mels, frames)
    torch.Size([2, 64, 44])
"""

from __future__ import annotations

import torch
import torchaudio
from torch import Tensor, nn

from audioclr.errors import ConfigError


class LogMel(nn.Module):
    """``(batch, samples)`` -> ``(batch, n_mels, 1 + samples // hop_length)`` log-mel energies."""

    def __init__(
        self,
        sample_rate: int,
        n_fft: int = 1024,
        hop_length: int = 512,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        f_max = float(f_max) if f_max is not None else sample_rate / 2
        for key, ok in (
            ("n_fft", n_fft >= 16),
            ("hop_length", 0 < hop_length <= n_fft),
            ("n_mels", n_mels >= 1),
            ("f_max", 0 <= f_min < f_max <= sample_rate / 2),
        ):
            if not ok:
                raise ConfigError(
                    f"encoder key '{key}' is out of range (n_fft={n_fft}, "
                    f"hop_length={hop_length}, n_mels={n_mels}, f_min={f_min}, "
                    f"f_max={f_max}, sample_rate={sample_rate})"
                )
        self.hop_length = hop_length
        self.n_fft = n_fft
        self.n_mels = n_mels
        self.eps = eps
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            hop_length=hop_length,
            n_mels=n_mels,
            f_min=f_min,
            f_max=f_max,
            power=2.0,
            center=True,
            pad_mode="reflect",
            norm="slaney",
            mel_scale="slaney",
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, samples)`` -> ``(batch, n_mels, frames)``, float32."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            return torch.log(self.mel(x.float()) + self.eps)
