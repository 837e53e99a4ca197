"""The HEAR 2021 common API for audioclr encoders: ``load_model``, ``get_scene_embeddings``,
``get_timestamp_embeddings``, so hear-eval-kit and other HEAR harnesses can evaluate an exported
encoder as ``audioclr.hear``.

``load_model`` reads an exported encoder safely (``audioclr.ssl.export.load_encoder``:
``weights_only`` loading, weights checked against their id) and wraps it in a
:class:`~audioclr.evaluate.hear_model.HearModel` (see that module for the sample-rate choice,
the windows and the multi-layer representation). Timestamps are every 50 ms by default
(``timestamp_hop_ms``), centred on windows of 500 ms (``timestamp_window_ms``).

Example:
    >>> import torch, audioclr.hear as hear
    >>> model = hear.load_model("encoder.pt").to("cuda")
    >>> audio = torch.rand(4, model.sample_rate * 10, device="cuda") * 2 - 1
    >>> hear.get_scene_embeddings(audio, model).shape
    torch.Size([4, 960])
    >>> emb, ts = hear.get_timestamp_embeddings(audio, model)
    >>> emb.shape, ts.shape, ts[0, 1].item()
    (torch.Size([4, 201, 960]), torch.Size([4, 201]), 50.0)
"""

from __future__ import annotations

import torch
from torch import Tensor

from audioclr.errors import ConfigError
from audioclr.evaluate.hear_model import HearModel

__all__ = ["HearModel", "get_scene_embeddings", "get_timestamp_embeddings", "load_model"]


def load_model(
    model_file_path: str = "",
    timestamp_hop_ms: float = 50.0,
    timestamp_window_ms: float = 500.0,
    batch_size: int = 64,
) -> HearModel:
    """An exported audioclr encoder (``audioclr export RUN OUT.pt``) as a HEAR model, on CPU.

    The model has the HEAR attributes ``sample_rate``, ``scene_embedding_size`` and
    ``timestamp_embedding_size``; move it with ``.to(device)``.
    """
    from audioclr.ssl.export import load_encoder

    if not model_file_path:
        raise ConfigError(
            "audioclr.hear.load_model needs the path of an exported audioclr encoder",
            hint="export one with: audioclr export RUN_DIR encoder.pt",
        )
    loaded = load_encoder(model_file_path, map_location="cpu")
    return HearModel(loaded, timestamp_hop_ms, timestamp_window_ms, batch_size)


def _model(model: torch.nn.Module) -> HearModel:
    if not isinstance(model, HearModel):
        raise TypeError(f"model must come from audioclr.hear.load_model, got {type(model)}")
    return model


def get_scene_embeddings(audio: Tensor, model: torch.nn.Module) -> Tensor:
    """``(n_sounds, n_samples)`` audio in [-1, 1] at ``model.sample_rate``, on the model's
    device -> ``(n_sounds, model.scene_embedding_size)`` float32."""
    return _model(model).scene_embeddings(audio)


def get_timestamp_embeddings(audio: Tensor, model: torch.nn.Module) -> tuple[Tensor, Tensor]:
    """``(n_sounds, n_samples)`` -> embeddings ``(n_sounds, n_timestamps,
    model.timestamp_embedding_size)`` float32 and timestamps ``(n_sounds, n_timestamps)`` in
    milliseconds: evenly spaced from 0, each the centre of its window, equal for every sound."""
    return _model(model).timestamp_embeddings(audio)
