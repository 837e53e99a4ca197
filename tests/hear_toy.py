"""A tiny HEAR 2021 module for tests: a fixed random projection of log-mel frames at 16 kHz.

Timestamp embeddings are the projected log-mel frames (10 ms hop, frames centred on their
timestamps); the scene embedding is their mean. ``load_model(path)`` reads a state_dict saved
with ``torch.save`` (loaded with ``weights_only=True``); ``""`` keeps the seeded projection.

Example:
    >>> model = load_model()
    >>> get_scene_embeddings(torch.zeros(2, 16000), model).shape
    torch.Size([2, 12])
"""

from __future__ import annotations

import torch
import torchaudio
from torch import Tensor, nn


class ToyModel(nn.Module):
    """Log-mel (32 bands) -> a seeded random projection to 12 dimensions."""

    sample_rate = 16000
    scene_embedding_size = timestamp_embedding_size = 12
    hop = 160  # 10 ms

    def __init__(self) -> None:
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            16000, n_fft=400, hop_length=self.hop, n_mels=32
        )
        gen = torch.Generator().manual_seed(0)
        self.projection = nn.Parameter(torch.randn(32, 12, generator=gen) / 32**0.5)

    def forward(self, audio: Tensor) -> Tensor:
        """``(n, samples)`` -> ``(n, frames, 12)``."""
        logmel = torch.log(self.mel(audio) + 1e-6)  # (n, 32, frames), centred frames
        return logmel.transpose(1, 2) @ self.projection


def load_model(model_file_path: str = "") -> ToyModel:
    """The toy model, with the projection of ``model_file_path`` when given."""
    model = ToyModel()
    if model_file_path:
        model.load_state_dict(torch.load(model_file_path, weights_only=True))
    return model


def get_timestamp_embeddings(audio: Tensor, model: ToyModel) -> tuple[Tensor, Tensor]:
    """``(n, samples)`` -> frames ``(n, frames, 12)`` and their centres in ms ``(n, frames)``."""
    emb = model(audio)
    ms = torch.arange(emb.shape[1], device=audio.device) * (model.hop * 1000 / model.sample_rate)
    return emb, ms.float().expand(audio.shape[0], -1)


def get_scene_embeddings(audio: Tensor, model: ToyModel) -> Tensor:
    """``(n, samples)`` -> ``(n, 12)``: the mean of the timestamp embeddings."""
    return get_timestamp_embeddings(audio, model)[0].mean(dim=1)
