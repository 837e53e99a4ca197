"""Safe torch file I/O: atomic saves (temp name, then rename) and code-free loads.

Example:
    >>> atomic_torch_save({"w": torch.zeros(2)}, "enc.pt")
    >>> safe_torch_load("enc.pt", "exported encoder")["w"].shape
    torch.Size([2])
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from audioclr.errors import CheckpointError


def safe_torch_load(path: str | Path, what: str, map_location: Any = "cpu") -> Any:
    """``torch.load(weights_only=True)``: tensors and plain types only, never code.

    Raises ``CheckpointError`` naming the file for a missing, truncated or unsafe file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"cannot load {what} {path}: {first}",
            hint="the file is damaged or not an audioclr file",
        ) from exc
