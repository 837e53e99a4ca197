"""An exported encoder behind the HEAR 2021 API: the model ``audioclr.hear.load_model`` returns.

Sample rate: the model reports the lowest HEAR rate (16000, 22050, 44100, 48000) at or above
the encoder's rate (48000 above that) and resamples its input to the encoder's rate inside
(torchaudio's windowed sinc; the filter is a buffer), so no band the encoder hears is lost.
An encoder already at a HEAR rate is fed as it is.

Representation: every block's channel means and standard deviations over time (the ``all``
layer of ``evaluate/frozen.py``; ``last`` for an encoder without intermediate blocks).
- scene: the encoder's windows (``input_samples``, hop = window, the last window aligned to
  the sound's end; a sound shorter than a window is one window padded to ``min_samples``),
  averaged: the same vector ``audioclr embed --layer all`` gives a track.
- timestamps: every ``timestamp_hop_ms`` from 0 to the sound's end, the same statistics over a
  ``timestamp_window_ms`` window centred on the timestamp (zero padding beyond the ends; at
  least ``min_samples``), so ``timestamp_embedding_size == scene_embedding_size``.

Every window is embedded on its own by the frozen encoder (``eval()``, BatchNorm fused, kept in
eval by ``train()``), ``batch_size`` windows at a time: a sound's vectors do not depend on the
other sounds of its batch, and memory grows with the batch, not with the sound (20 minutes is
fine). Runs on the device the model was moved to (``model.to("cuda")``), under float16
autocast on CUDA as ``audioclr embed`` does; outputs are float32.

Example:
    >>> model = HearModel(load_encoder("enc.pt"))
    >>> model.sample_rate, model.scene_embedding_size
    (22050, 960)
    >>> emb, ts = model.timestamp_embeddings(torch.zeros(2, 22050))
    >>> emb.shape, ts[0, :3].tolist()
    (torch.Size([2, 21, 960]), [0.0, 50.0, 100.0])
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
import torchaudio
from torch import Tensor, nn

from audioclr.errors import ConfigError
from audioclr.evaluate.embed import window_starts
from audioclr.evaluate.frozen import inference_copy, layer_dim, layer_vectors

if TYPE_CHECKING:
    from audioclr.ssl.export import LoadedEncoder

HEAR_RATES = (16000, 22050, 44100, 48000)


def hear_rate(rate: int) -> int:
    """The HEAR rate a model reports for an encoder at ``rate`` (lowest allowed at or above it)."""
    return next((r for r in HEAR_RATES if r >= rate), HEAR_RATES[-1])


class HearModel(nn.Module):
    """A frozen exported encoder with the HEAR model attributes and both embedding kinds.

    ``audio``: ``(n_sounds, n_samples)`` float in [-1, 1] at ``sample_rate``, on the model's
    device. ``scene_embeddings`` -> ``(n_sounds, scene_embedding_size)``;
    ``timestamp_embeddings`` -> ``(n_sounds, n_timestamps, timestamp_embedding_size)`` and
    ``(n_sounds, n_timestamps)`` milliseconds. Both float32.
    """

    def __init__(
        self,
        loaded: LoadedEncoder,
        timestamp_hop_ms: float = 50.0,
        timestamp_window_ms: float = 500.0,
        batch_size: int = 64,
    ) -> None:
        super().__init__()
        for key, value in (
            ("timestamp_hop_ms", timestamp_hop_ms),
            ("timestamp_window_ms", timestamp_window_ms),
            ("batch_size", batch_size),
        ):
            if not value > 0:
                raise ConfigError(f"HEAR model key '{key}' must be > 0, got {value!r}")
        self.layer = "all" if len(loaded.layer_names) > 1 else "last"
        dim = layer_dim(loaded, self.layer)
        self.scene_embedding_size = self.timestamp_embedding_size = dim
        self.encoder_rate = int(loaded.sample_rate)
        self.sample_rate = hear_rate(self.encoder_rate)
        # a copy of the memoised inference copy: moving this model must not move that one
        self.encoder = copy.deepcopy(inference_copy(loaded.encoder, torch.device("cpu")))
        self.resample: nn.Module = (
            torchaudio.transforms.Resample(self.sample_rate, self.encoder_rate)
            if self.sample_rate != self.encoder_rate
            else nn.Identity()
        )
        self.min_samples = int(getattr(loaded.encoder, "min_samples", 1))
        self.window = int(loaded.input_samples)
        self.hop_ms = float(timestamp_hop_ms)
        self.timestamp_window = max(
            self.min_samples, round(timestamp_window_ms / 1000 * self.encoder_rate)
        )
        self.batch_size = int(batch_size)
        self.encoder_id = loaded.encoder_id

    def train(self, mode: bool = True) -> HearModel:
        """Sets the flag only: the encoder stays in ``eval()`` (frozen BatchNorm statistics)."""
        super().train(mode)
        self.encoder.eval()
        return self

    @property
    def device(self) -> torch.device:
        """Where the encoder's weights are (audio must be there too)."""
        return next(self.encoder.parameters()).device

    def forward(self, audio: Tensor) -> Tensor:
        """Scene embeddings (see :meth:`scene_embeddings`)."""
        return self.scene_embeddings(audio)

    def scene_embeddings(self, audio: Tensor) -> Tensor:
        """``(n_sounds, n_samples)`` -> ``(n_sounds, scene_embedding_size)``: window mean."""
        x = self._encoder_input(audio)
        if x.shape[1] < self.window:
            x = F.pad(x, (0, max(0, self.min_samples - x.shape[1])))
            return self._embed_windows(x, torch.zeros(1, dtype=torch.long), x.shape[1])[:, 0]
        starts = torch.tensor(window_starts(x.shape[1], self.window, self.window))
        return self._embed_windows(x, starts, self.window).mean(dim=1)

    def timestamps_ms(self, n_samples: int) -> Tensor:
        """``(n_timestamps,)`` float64: ``k * timestamp_hop_ms`` for every k from 0 up to the
        sound's duration (``n_samples`` at ``sample_rate``)."""
        duration_ms = n_samples * 1000.0 / self.sample_rate
        count = math.floor(duration_ms / self.hop_ms + 1e-9) + 1
        return torch.arange(count, dtype=torch.float64) * self.hop_ms

    def timestamp_embeddings(self, audio: Tensor) -> tuple[Tensor, Tensor]:
        """``(n_sounds, n_samples)`` -> embeddings ``(n_sounds, n_timestamps, dim)`` and
        timestamps ``(n_sounds, n_timestamps)`` in ms, the same for every sound."""
        x = self._encoder_input(audio)
        ms = self.timestamps_ms(audio.shape[1])
        width = self.timestamp_window
        half = width // 2
        # centre in encoder samples (nearest sample); padding by half a window makes it the start
        starts = torch.round(ms * (self.encoder_rate / 1000.0)).long()
        x = F.pad(x, (half, width - half))
        emb = self._embed_windows(x, starts, width)
        return emb, ms.float().to(audio.device).expand(audio.shape[0], -1)

    def _encoder_input(self, audio: Tensor) -> Tensor:
        if audio.dim() != 2:
            raise ValueError(f"audio must be (n_sounds, n_samples), got shape {tuple(audio.shape)}")
        if audio.device != self.device:
            raise ValueError(
                f"audio is on {audio.device} but the model is on {self.device}: "
                "move one of them (model.to(device) or audio.to(device))"
            )
        with torch.no_grad():
            return self.resample(audio.float())

    def _embed_windows(self, x: Tensor, starts: Tensor, width: int) -> Tensor:
        """``x[:, s : s + width]`` for every start ``s`` -> ``(n_sounds, len(starts), dim)``,
        ``batch_size`` windows at a time (each embedded independently of the others)."""
        n, k = x.shape[0], starts.numel()
        dev = x.device
        sound = torch.arange(n, device=dev).repeat_interleave(k)
        start = starts.to(dev).repeat(n)
        offsets = torch.arange(width, device=dev)
        out = torch.empty(n * k, self.scene_embedding_size, device=dev)
        with torch.no_grad():
            for lo in range(0, n * k, self.batch_size):
                hi = min(lo + self.batch_size, n * k)
                windows = x[sound[lo:hi, None], start[lo:hi, None] + offsets]
                with torch.autocast(dev.type, dtype=torch.float16, enabled=dev.type == "cuda"):
                    out[lo:hi] = layer_vectors(self.encoder, windows, self.layer).float()
        return out.view(n, k, -1)
