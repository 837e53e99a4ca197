"""Exported encoders: weights plus the plain-type config needed to rebuild and use them.

The file is a ``torch.save``d dict loadable with ``torch.load(weights_only=True)``:
``format`` ("audioclr-encoder"), ``format_version``, ``encoder`` (registry name),
``encoder_kwargs``, ``sample_rate``, ``input_samples``, ``min_samples``, ``output_dim``,
``layer_names``, ``config`` (the resolved pretraining config, or {}), ``trained_on`` (the
pretraining clip cache, its source files and their content fingerprints, so a probe can tell
when its test audio was seen in pretraining; ``sources`` is null when the cache could not be
read at export), ``encoder_id`` (sha256 of the weights, 16 hex), ``code_version`` and
``state_dict``.

Example:
    >>> export_encoder("runs/simclr_melcnn", "encoder.pt")
    >>> loaded = load_encoder("encoder.pt")
    >>> loaded.encoder(torch.zeros(1, loaded.input_samples)).shape
    torch.Size([1, 256])
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from audioclr import __version__
from audioclr.atomic import atomic_torch_save
from audioclr.errors import CheckpointError, ConfigError
from audioclr.ssl.encoders import Encoder, build_encoder
from audioclr.ssl.io import safe_torch_load

FORMAT = "audioclr-encoder"
FORMAT_VERSION = 1


@dataclass
class LoadedEncoder:
    """An encoder in ``eval()`` mode plus what a user needs to feed it."""

    encoder: Encoder
    sample_rate: int
    input_samples: int
    layer_names: list[str]
    config: dict
    encoder_id: str
    trained_on: dict = field(default_factory=dict)  # see training_sources


def weights_id(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over the sorted names, dtypes, shapes and bytes of a state_dict, 16 hex."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().cpu().contiguous().reshape(-1)
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def training_sources(cache: str | Path | list[str] | None) -> dict[str, Any]:
    """``{"cache", "sources": [abs path...] | None, "fingerprints": [...]}`` of a clip cache, or
    of a list of caches read as one (``data.cache=[a, b]``: ``cache`` is then the list)
    (``audioclr.data.fingerprint``: size + hash of the file's ends; None where unreadable)."""
    from audioclr.data.fingerprint import file_fingerprint
    from audioclr.data.manifest import read_manifest, tracks_of
    from audioclr.errors import AudioclrError

    if not cache:
        return {"cache": None, "sources": None, "fingerprints": None}
    if isinstance(cache, list):
        parts = [training_sources(c) for c in cache]
        known = all(p["sources"] is not None for p in parts)
        return {
            "cache": [p["cache"] for p in parts],
            "sources": [s for p in parts for s in p["sources"]] if known else None,
            "fingerprints": [f for p in parts for f in p["fingerprints"]] if known else None,
        }
    root = Path(cache)
    try:
        tracks = tracks_of(read_manifest(root), root)
    except AudioclrError:
        return {"cache": str(root), "sources": None, "fingerprints": None}
    return {
        "cache": str(root.resolve()),
        "sources": [t.source for t in tracks],
        "fingerprints": [file_fingerprint(t.source) for t in tracks],
    }


def encoder_payload(
    encoder: Encoder, config: dict | None = None, trained_on: dict | None = None
) -> dict[str, Any]:
    """The plain-type dict written by :func:`save_encoder` (tensors on CPU)."""
    state = {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "encoder": encoder.name,
        "encoder_kwargs": dict(encoder.kwargs),
        "sample_rate": encoder.sample_rate,
        "input_samples": encoder.input_samples,
        "min_samples": encoder.min_samples,
        "output_dim": encoder.output_dim,
        "layer_names": list(encoder.layer_names),
        "config": config or {},
        "trained_on": trained_on or training_sources(None),
        "encoder_id": weights_id(state),
        "code_version": __version__,
        "state_dict": state,
    }


def save_encoder(
    encoder: Encoder,
    out_path: str | Path,
    config: dict | None = None,
    trained_on: dict | None = None,
) -> Path:
    """Write ``encoder`` as an exported-encoder file (atomically); returns the path."""
    return atomic_torch_save(encoder_payload(encoder, config, trained_on), out_path)


def export_encoder(run_dir: str | Path, out_path: str | Path) -> Path:
    """Export the encoder of a pretraining run (its ``checkpoints/last.ckpt``, or a .ckpt path)."""
    from audioclr.ssl.checkpoint import read_run_checkpoint

    meta, encoder_state = read_run_checkpoint(run_dir)
    encoder = build_encoder(meta["encoder"], meta["sample_rate"], **meta["encoder_kwargs"])
    try:
        encoder.load_state_dict(encoder_state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint in {run_dir} does not match its encoder config: {str(exc).splitlines()[0]}"
        ) from exc
    config = meta.get("config") or {}
    trained_on = training_sources((config.get("data") or {}).get("cache"))
    return save_encoder(encoder, out_path, config, trained_on)


def _check_header(data: Any, path: Path) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not an exported audioclr encoder",
            hint="create one with: audioclr export RUN_DIR OUT.pt",
        )
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has encoder format version {version}; this audioclr reads version "
            f"{FORMAT_VERSION}",
            hint="re-export the encoder with this audioclr version",
        )


def load_encoder(
    path: str | Path, map_location: Any = "cpu", random_init_seed: int | None = None
) -> LoadedEncoder:
    """Load an exported encoder (``eval()`` mode, on ``map_location``).

    ``random_init_seed``: rebuild the same architecture with fresh random weights drawn from
    that seed instead (the random-init baseline); its ``encoder_id`` is of those weights.
    """
    path = Path(path)
    data = safe_torch_load(path, "exported encoder", map_location="cpu")
    _check_header(data, path)
    try:
        if random_init_seed is None:
            encoder = build_encoder(data["encoder"], data["sample_rate"], **data["encoder_kwargs"])
            encoder.load_state_dict(data["state_dict"], strict=True)
            if weights_id(data["state_dict"]) != data["encoder_id"]:
                raise CheckpointError(
                    f"{path}: weights do not match the stored encoder_id "
                    f"{data['encoder_id']} (file damaged or edited)"
                )
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(random_init_seed)
                encoder = build_encoder(
                    data["encoder"], data["sample_rate"], **data["encoder_kwargs"]
                )
    except (KeyError, RuntimeError, ConfigError) as exc:
        raise CheckpointError(f"cannot rebuild the encoder stored in {path}: {exc}") from exc
    encoder_id = weights_id(encoder.state_dict())
    encoder.to(map_location).eval()
    return LoadedEncoder(
        encoder=encoder,
        sample_rate=int(data["sample_rate"]),
        input_samples=int(data["input_samples"]),
        layer_names=list(data["layer_names"]),
        config=dict(data["config"]),
        encoder_id=encoder_id,
        trained_on=dict(data.get("trained_on") or {}),
    )
