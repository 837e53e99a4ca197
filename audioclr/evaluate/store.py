"""The embeddings folder: the file contract between ``embed`` and ``probe`` / ``index``.

A folder holds ``embeddings.npy`` (float32, ``(tracks, dim)``) and ``tracks.json``:
``{"format_version": 1, "ids": [...], "sources": [...], "meta": {...}}``. ``meta`` records
how the vectors were made (``encoder_id``, ``encoder_path``, ``layer``, ``sample_rate``,
``hop_samples``...). JSON and ``.npy`` only: loading never runs code (``allow_pickle=False``).
Both files are written to temporary names and renamed, so a reader never sees half a folder.

Example:
    >>> save_embeddings(tmp, np.eye(2, dtype="float32"), ["a", "b"], ["/x/a.wav", "/x/b.wav"], {})
    >>> load_embeddings(tmp).ids
    ['a', 'b']
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audioclr.atomic import atomic_save_numpy, atomic_write_text
from audioclr.errors import AudioclrError

FORMAT_VERSION = 1
VECTORS = "embeddings.npy"
TABLE = "tracks.json"


@dataclass
class EmbeddingSet:
    """Track vectors with their ids, source paths and provenance."""

    vectors: np.ndarray  # (tracks, dim) float32
    ids: list[str]
    sources: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.vectors.shape[1])


def save_embeddings(
    out_dir: str | Path,
    vectors: np.ndarray,
    ids: list[str],
    sources: list[str],
    meta: dict[str, Any],
) -> Path:
    """Write an embeddings folder atomically; returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(ids) != vectors.shape[0] or len(sources) != len(ids):
        raise ValueError(
            f"vectors {vectors.shape} do not match {len(ids)} ids / {len(sources)} sources"
        )
    table = {
        "format_version": FORMAT_VERSION,
        "ids": list(ids),
        "sources": list(sources),
        "meta": meta,
    }
    atomic_save_numpy(out / VECTORS, vectors)
    atomic_write_text(out / TABLE, json.dumps(table, indent=1))
    return out


def load_embeddings(folder: str | Path) -> EmbeddingSet:
    """Read an embeddings folder written by :func:`save_embeddings` (clear errors if not one)."""
    folder = Path(folder)
    if not (folder / VECTORS).is_file() or not (folder / TABLE).is_file():
        raise AudioclrError(
            f"{folder} is not an embeddings folder (needs {VECTORS} and {TABLE})",
            hint="create one with: audioclr embed ENCODER DATA OUT",
        )
    try:
        table = json.loads((folder / TABLE).read_text())
        vectors = np.load(folder / VECTORS, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise AudioclrError(
            f"{folder}: damaged embeddings folder ({exc})", hint="rerun audioclr embed"
        ) from exc
    version = table.get("format_version")
    if version != FORMAT_VERSION:
        raise AudioclrError(
            f"{folder / TABLE} has format_version {version}; "
            f"this audioclr reads version {FORMAT_VERSION}",
            hint="re-embed with this version of audioclr",
        )
    if vectors.ndim != 2 or vectors.shape[0] != len(table["ids"]):
        raise AudioclrError(
            f"{folder}: {vectors.shape} vectors but {len(table['ids'])} ids",
            hint="rerun audioclr embed",
        )
    return EmbeddingSet(
        vectors.astype(np.float32, copy=False),
        table["ids"],
        table["sources"],
        table.get("meta", {}),
    )
