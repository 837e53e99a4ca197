"""Training checkpoints: atomic writes (a Lightning ``CheckpointIO``) and code-free reads.

A run's checkpoint is a Lightning checkpoint (weights, optimizer, schedulers, loop state, step)
plus an ``audioclr`` entry of plain types: ``format_version``, ``encoder``, ``encoder_kwargs``,
``sample_rate``, ``config`` (the resolved config dict) and ``code_version``. Everything loads with
``torch.load(weights_only=True)``.

Example:
    >>> meta, encoder_state = read_run_checkpoint("runs/simclr_melcnn")
    >>> meta["encoder"]
    'melcnn'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from audioclr.atomic import atomic_torch_save
from audioclr.errors import CheckpointError
from audioclr.ssl.io import safe_torch_load

CHECKPOINT_VERSION = 1
LAST = "last.ckpt"
# heads of checkpoints written before objectives were modules of their own, and their new place
LEGACY_PREFIXES = {
    "projection.": "objective.projection.",
    "criterion.": "objective.criterion.",
    "cpc.": "objective.head.",
}


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves with temp-then-rename (a crash never leaves a half-written checkpoint) and loads
    with ``weights_only=True``."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return safe_torch_load(path, "checkpoint", map_location=map_location or "cpu")


def rename_legacy_keys(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Move the top-level SimCLR/CPC head keys of an older checkpoint under ``objective.``.

    Example:
        >>> list(rename_legacy_keys({"projection.layers.0.weight": w, "encoder.x": v}))
        ['objective.projection.layers.0.weight', 'encoder.x']
    """

    def renamed(key: str) -> str:
        for old, new in LEGACY_PREFIXES.items():
            if key.startswith(old):
                return new + key[len(old) :]
        return key

    return {renamed(k): v for k, v in state_dict.items()}


def checkpoint_dir(run_dir: str | Path) -> Path:
    """Where a run keeps its checkpoints: ``run_dir/checkpoints``."""
    return Path(run_dir) / "checkpoints"


def find_checkpoint(run_or_ckpt: str | Path) -> Path:
    """A ``.ckpt`` path as given, or ``run_dir/checkpoints/last.ckpt``; ``CheckpointError`` if
    there is none."""
    path = Path(run_or_ckpt)
    if path.is_file():
        return path
    last = checkpoint_dir(path) / LAST
    if not last.is_file():
        what = "run folder" if path.is_dir() else "path"
        raise CheckpointError(
            f"no checkpoint at {last} ({what} {path})",
            hint="give a run folder written by 'audioclr pretrain' or a .ckpt",
        )
    return last


def read_run_checkpoint(run_or_ckpt: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(audioclr meta, encoder state_dict)`` of a training checkpoint."""
    path = find_checkpoint(run_or_ckpt)
    ckpt = safe_torch_load(path, "checkpoint")
    meta = ckpt.get("audioclr") if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is not an audioclr training checkpoint")
    version = meta.get("format_version")
    if version != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}; this audioclr "
            f"reads version {CHECKPOINT_VERSION}"
        )
    prefix = "encoder."
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    if not state:
        raise CheckpointError(f"{path} holds no encoder weights")
    return meta, state
