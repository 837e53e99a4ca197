"""The embeddings folder: the file contract between ``embed`` and ``probe`` / ``index``.

A folder holds ``embeddings.npy`` (float32, ``(tracks, dim)``), ``tracks.json``
(``{"format_version": 1, "ids": [...], "sources": [...], "meta": {...}}``) and, written last,
``manifest.json`` (each file's size and sha256: ``audioclr/commit.py``). ``meta`` records how
the vectors were made (``encoder_id``, ``encoder_path``, ``layer``, ``sample_rate``,
``hop_samples``...) and the files that could not be read (``skipped``). Per-window vectors, when
kept, are an embeddings folder of their own in ``windows/``, listed in the parent's manifest so
the two are always of the same run. JSON and ``.npy`` only: loading never runs code.

A rewrite first removes the manifest and ``tracks.json``, so a rewrite killed part way leaves a
folder that is refused ("re-run embed"), never new vectors paired with old ids. A folder without
a manifest (older audioclr, or made by hand) is read as it is.

Example:
    >>> save_embeddings(tmp, np.eye(2, dtype="float32"), ["a", "b"], ["/x/a.wav", "/x/b.wav"], {})
    >>> load_embeddings(tmp).ids
    ['a', 'b']
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audioclr.atomic import atomic_save_numpy, atomic_write_text
from audioclr.commit import MANIFEST, invalidate, verify_manifest, write_manifest
from audioclr.errors import AudioclrError
from audioclr.lock import folder_lock

FORMAT_VERSION = 1
VECTORS = "embeddings.npy"
TABLE = "tracks.json"
WINDOWS = "windows"
KIND = "embeddings"
RERUN = "re-run audioclr embed (it resumes from OUT/.parts), or embed into a new folder"


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


def _checked(vectors: np.ndarray, ids: list[str], sources: list[str]) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(ids) != vectors.shape[0] or len(sources) != len(ids):
        raise ValueError(
            f"vectors {vectors.shape} do not match {len(ids)} ids / {len(sources)} sources"
        )
    return vectors


def _write(out: Path, emb: EmbeddingSet, extra: list[str]) -> None:
    table = {"format_version": FORMAT_VERSION, "ids": emb.ids, "sources": emb.sources}
    atomic_save_numpy(out / VECTORS, emb.vectors)
    atomic_write_text(out / TABLE, json.dumps({**table, "meta": emb.meta}, indent=1))
    write_manifest(out, [VECTORS, TABLE, *extra], KIND)


def save_embeddings(
    out_dir: str | Path,
    vectors: np.ndarray,
    ids: list[str],
    sources: list[str],
    meta: dict[str, Any],
    windows: EmbeddingSet | None = None,
) -> Path:
    """Write an embeddings folder (and ``windows/`` when given, else none) as one commit, under
    the folder's writer lock (``audioclr/lock.py``)."""
    out = Path(out_dir)
    emb = EmbeddingSet(_checked(vectors, ids, sources), list(ids), list(sources), meta)
    win = (
        None
        if windows is None
        else EmbeddingSet(
            _checked(windows.vectors, windows.ids, windows.sources),
            list(windows.ids),
            list(windows.sources),
            windows.meta,
        )
    )
    with folder_lock(out, "save embeddings"):
        invalidate(out, [TABLE])
        if (out / WINDOWS).is_dir():
            shutil.rmtree(out / WINDOWS)
        extra: list[str] = []
        if win is not None:
            _write(out / WINDOWS, win, [])
            extra = [f"{WINDOWS}/{n}" for n in (VECTORS, TABLE, MANIFEST)]
        _write(out, emb, extra)
    return out


def _read_table(folder: Path) -> dict[str, Any]:
    try:
        table = json.loads((folder / TABLE).read_text())
    except (ValueError, OSError) as exc:
        raise AudioclrError(f"{folder / TABLE} is damaged ({exc})", hint=RERUN) from exc
    version = table.get("format_version") if isinstance(table, dict) else None
    if version != FORMAT_VERSION:
        raise AudioclrError(
            f"{folder / TABLE} has format_version {version}; "
            f"this audioclr reads version {FORMAT_VERSION}",
            hint="re-embed with this version of audioclr",
        )
    ids, sources, meta = table.get("ids"), table.get("sources"), table.get("meta", {})
    well_formed = (
        isinstance(ids, list)
        and isinstance(sources, list)
        and isinstance(meta, dict)
        and len(ids) == len(sources)
        and all(isinstance(s, str) for s in ids + sources)
    )
    if not well_formed:
        raise AudioclrError(
            f"{folder / TABLE}: ids and sources must be lists of strings of equal length",
            hint=RERUN,
        )
    return table


def load_embeddings(folder: str | Path, mmap: bool = False, verify: bool = True) -> EmbeddingSet:
    """Read an embeddings folder written by :func:`save_embeddings` (clear errors if not one).

    The files are checked against ``manifest.json`` (sizes always; sha256 unless ``verify`` is
    false). ``mmap``: the vectors are a read-only memory map instead of read into RAM.
    """
    folder = Path(folder)
    has = [(folder / n).is_file() for n in (VECTORS, TABLE)]
    if not all(has):
        interrupted = has[0] and (folder / ".parts").is_dir()
        raise AudioclrError(
            f"{folder} is not an embeddings folder (needs {VECTORS} and {TABLE})"
            + (": an embed into it did not finish" if interrupted else ""),
            hint=RERUN if interrupted else "create one with: audioclr embed ENCODER DATA OUT",
        )
    verify_manifest(folder, KIND, AudioclrError, RERUN, hashes=verify)
    table = _read_table(folder)
    try:
        vectors = np.load(folder / VECTORS, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise AudioclrError(f"{folder / VECTORS} is damaged ({exc})", hint=RERUN) from exc
    if vectors.ndim != 2 or vectors.shape[0] != len(table["ids"]):
        raise AudioclrError(
            f"{folder}: {vectors.shape} vectors but {len(table['ids'])} ids", hint=RERUN
        )
    if vectors.dtype != np.float32:
        vectors = vectors.astype(np.float32)
    return EmbeddingSet(vectors, table["ids"], table["sources"], table.get("meta", {}))
