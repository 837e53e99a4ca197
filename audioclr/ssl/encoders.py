"""Encoder registry: ``ENCODERS`` (a plain dict) and ``build_encoder``.

- ``melcnn``: log-mel computed on the device + compact 2D CNN, 256-d; the fast CPU default.
- ``samplecnn``: CLMR's raw-waveform SampleCNN, 512-d; 59049-sample input at 22.05 kHz.

Example:
    >>> enc = build_encoder("samplecnn", 22050)
    >>> enc.min_samples, enc.output_dim
    (59049, 512)
"""

from __future__ import annotations

from typing import Any

from audioclr.errors import ConfigError
from audioclr.ssl.base import Encoder
from audioclr.ssl.melcnn import MelCNN
from audioclr.ssl.samplecnn import SampleCNN

ENCODERS: dict[str, type[Encoder]] = {"melcnn": MelCNN, "samplecnn": SampleCNN}


def build_encoder(name: str, sample_rate: int, **kwargs: Any) -> Encoder:
    """Build the registered encoder ``name`` at ``sample_rate`` with its keyword arguments.

    Raises ``ConfigError`` listing the choices for an unknown name or naming a bad kwarg.
    """
    if name not in ENCODERS:
        raise ConfigError(f"unknown encoder {name!r}", hint=f"choose one of {sorted(ENCODERS)}")
    try:
        return ENCODERS[name](sample_rate, **kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"bad argument for encoder {name!r}: {exc}",
            hint=f"see the docstring of audioclr.ssl.{name}",
        ) from exc


__all__ = ["ENCODERS", "Encoder", "MelCNN", "SampleCNN", "build_encoder"]
