"""Resumable, chunked embedding of many tracks into an embeddings folder (``store.py``).

Tracks are processed in chunks; each finished chunk is saved under ``OUT/.parts/`` (``.npy``
then a JSON marker naming its ids and a key of the settings). A rerun loads finished chunks
whose ids and key match and computes only the rest; the final folder is written with
``save_embeddings`` (plus ``OUT/windows/`` with per-window vectors when requested).

Example:
    >>> run_chunked(tracks, lambda ts: [np.ones((1, 4), "float32") for t in ts], out, meta={})
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from audioclr.atomic import atomic_save_numpy, atomic_write_text
from audioclr.errors import AudioReadError
from audioclr.evaluate.store import EmbeddingSet, save_embeddings
from audioclr.evaluate.tracks import Track

PARTS = ".parts"
WINDOWS = "windows"
# compute(tracks) -> one (windows, dim) float32 array per track
ComputeFn = Callable[[Sequence[Track]], list[np.ndarray]]


def settings_key(meta: dict[str, Any]) -> str:
    """A short hash of the settings that make a chunk reusable."""
    return hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _load_part(stem: Path, ids: list[str], key: str) -> tuple[np.ndarray, np.ndarray] | None:
    marker = stem.with_suffix(".json")
    if not marker.is_file():
        return None
    try:
        info = json.loads(marker.read_text())
        if info.get("ids") != ids or info.get("key") != key:
            return None
        windows = np.load(stem.with_suffix(".npy"), allow_pickle=False)
        counts = np.asarray(info["counts"], dtype=np.int64)
    except (OSError, ValueError, KeyError):
        return None
    return windows, counts


def _save_part(stem: Path, ids: list[str], key: str, per_track: list[np.ndarray]) -> None:
    windows = np.concatenate(per_track, axis=0).astype(np.float32)
    counts = [int(w.shape[0]) for w in per_track]
    atomic_save_numpy(stem.with_suffix(".npy"), windows, durable=False)
    info = {"ids": ids, "key": key, "counts": counts}
    atomic_write_text(stem.with_suffix(".json"), json.dumps(info), durable=False)


def run_chunked(
    tracks: Sequence[Track],
    compute: ComputeFn,
    out_dir: str | Path,
    meta: dict[str, Any],
    keep_windows: bool = False,
    chunk_size: int = 64,
    progress: bool = True,
) -> EmbeddingSet:
    """Embed ``tracks`` chunk by chunk (resumable); track vector = mean of its window vectors."""
    if not tracks:
        raise AudioReadError(f"no tracks to embed into {out_dir}", hint="check the data path")
    out = Path(out_dir)
    parts = out / PARTS
    parts.mkdir(parents=True, exist_ok=True)
    key = settings_key(meta)
    all_windows: list[np.ndarray] = []
    all_counts: list[np.ndarray] = []
    bar = tqdm(total=len(tracks), desc="embed", unit="track", disable=not progress)
    for c, lo in enumerate(range(0, len(tracks), chunk_size)):
        chunk = tracks[lo : lo + chunk_size]
        ids = [t.id for t in chunk]
        stem = parts / f"part-{c:05d}"
        loaded = _load_part(stem, ids, key)
        if loaded is None:
            per_track = compute(chunk)
            _save_part(stem, ids, key, per_track)
            loaded = _load_part(stem, ids, key)
            assert loaded is not None
        all_windows.append(loaded[0])
        all_counts.append(loaded[1])
        bar.update(len(chunk))
    bar.close()
    return _write_final(tracks, all_windows, all_counts, out, meta, keep_windows)


def _write_final(
    tracks: Sequence[Track],
    windows: list[np.ndarray],
    counts: list[np.ndarray],
    out: Path,
    meta: dict[str, Any],
    keep_windows: bool,
) -> EmbeddingSet:
    win = np.concatenate(windows, axis=0)
    cnt = np.concatenate(counts)
    owner = np.repeat(np.arange(len(tracks)), cnt)
    sums = np.zeros((len(tracks), win.shape[1]), dtype=np.float64)
    np.add.at(sums, owner, win)
    vectors = (sums / cnt[:, None]).astype(np.float32)
    ids, sources = [t.id for t in tracks], [t.source for t in tracks]
    meta = {**meta, "dim": int(vectors.shape[1]), "windows": bool(keep_windows)}
    if keep_windows:
        wids = [f"{ids[o]}#{k}" for o, k in zip(owner, _rank_within(cnt), strict=True)]
        wsources = [sources[o] for o in owner]
        wmeta = {**meta, "kind": "windows", "track_index": owner.tolist()}
        save_embeddings(out / WINDOWS, win, wids, wsources, wmeta)
    return _saved(out, vectors, ids, sources, meta)


def _saved(
    out: Path, vectors: np.ndarray, ids: list[str], sources: list[str], meta: dict
) -> EmbeddingSet:
    save_embeddings(out, vectors, ids, sources, meta)
    return EmbeddingSet(vectors, ids, sources, meta)


def _rank_within(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., c-1 for each count c, concatenated."""
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(int(counts.sum())) - starts
