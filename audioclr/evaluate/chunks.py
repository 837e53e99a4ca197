"""Resumable, chunked embedding of many tracks into an embeddings folder (``store.py``).

Tracks are processed in chunks; each finished chunk is saved under ``OUT/.parts/`` (``.npy``
then a JSON marker naming its ids, a key of the settings, and the tracks it skipped). A rerun
loads finished chunks whose ids and key match and computes only the rest (and the chunks that
skipped a file: it is tried again). The final folder is written with ``save_embeddings`` (with
``OUT/windows/`` per-window vectors when requested), under the folder's writer lock
(``audioclr/lock.py``): a second writer fails at once.

A track whose file cannot be read (``TrackReadError``) is skipped as ``prepare`` skips it and
listed with its reason in ``meta["skipped"]``; more than ``max_unreadable`` of them (a share of
all tracks) fails with that list before anything is written.

Under ``torchrun`` (``distributed.py``) rank ``r`` of ``w`` embeds chunks ``r, r+w, ...``, the
results are gathered in chunk order, and rank 0 alone writes: the folder is the one a single
process writes, byte for byte.

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
from audioclr.errors import AudioReadError, ConfigError
from audioclr.evaluate import distributed
from audioclr.evaluate.store import EmbeddingSet, save_embeddings
from audioclr.evaluate.tracks import Track, TrackReadError, shown

PARTS = ".parts"
# compute(tracks) -> one (windows, dim) float32 array per track
ComputeFn = Callable[[Sequence[Track]], list[np.ndarray]]
# one finished chunk: windows (n, dim), per-track window counts (0 = skipped), skipped id -> reason
Part = tuple[np.ndarray, np.ndarray, dict[str, str]]


def settings_key(meta: dict[str, Any]) -> str:
    """A short hash of the settings that make a chunk reusable."""
    return hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _load_part(stem: Path, ids: list[str], key: str) -> Part | None:
    marker = stem.with_suffix(".json")
    if not marker.is_file():
        return None
    try:
        info = json.loads(marker.read_text())
        if info.get("ids") != ids or info.get("key") != key:
            return None
        windows = np.load(stem.with_suffix(".npy"), allow_pickle=False)
        counts = np.asarray(info["counts"], dtype=np.int64)
        if info.get("skipped"):  # read its unreadable files again: a permission may be fixed
            return None
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    return windows, counts, {}


def _compute_part(chunk: Sequence[Track], compute: ComputeFn) -> Part:
    """Read every track (skipping unreadable ones), then embed the readable ones together."""
    readable, skipped = [], {}
    for t in chunk:
        try:
            x = t.read()
        except TrackReadError as exc:
            skipped[t.id] = exc.reason
            continue
        readable.append(Track(t.id, t.source, lambda x=x: x))
    per_track = iter(compute(readable) if readable else [])
    arrays = [np.zeros((0, 0), np.float32) if t.id in skipped else next(per_track) for t in chunk]
    dim = max((a.shape[1] for a in arrays if a.size), default=0)
    windows = np.concatenate([a.reshape(-1, dim) for a in arrays], axis=0).astype(np.float32)
    return windows, np.asarray([a.shape[0] for a in arrays], np.int64), skipped


def _save_part(stem: Path, ids: list[str], key: str, part: Part) -> None:
    windows, counts, skipped = part
    atomic_save_numpy(stem.with_suffix(".npy"), windows, durable=False)
    info = {"ids": ids, "key": key, "counts": counts.tolist(), "skipped": skipped}
    atomic_write_text(stem.with_suffix(".json"), json.dumps(info), durable=False)


def run_chunked(
    tracks: Sequence[Track],
    compute: ComputeFn,
    out_dir: str | Path,
    meta: dict[str, Any],
    keep_windows: bool = False,
    chunk_size: int = 64,
    progress: bool = True,
    max_unreadable: float = 1.0,
) -> EmbeddingSet:
    """Embed ``tracks`` chunk by chunk (resumable); track vector = mean of its window vectors.

    ``max_unreadable``: the largest share of tracks that may be skipped as unreadable.
    """
    if not tracks:
        raise AudioReadError(f"no tracks to embed into {out_dir}", hint="check the data path")
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}", hint="e.g. --chunk-size 64")
    out = Path(out_dir)
    rank, world = distributed.rank_and_world()
    with distributed.rank0_lock(out, "embed"):
        parts = out / PARTS
        parts.mkdir(parents=True, exist_ok=True)
        key = settings_key(meta)
        starts = list(range(0, len(tracks), chunk_size))
        mine: dict[int, Part] = {}
        todo = range(rank, len(starts), world)
        share = sum(len(tracks[starts[c] : starts[c] + chunk_size]) for c in todo)
        bar = tqdm(total=share, desc="embed", unit="track", disable=not progress or rank > 0)
        for c in todo:
            chunk = tracks[starts[c] : starts[c] + chunk_size]
            ids, stem = [t.id for t in chunk], parts / f"part-{c:05d}"
            part = _load_part(stem, ids, key)
            if part is None:
                part = _compute_part(chunk, compute)
                _save_part(stem, ids, key, part)
            mine[c] = part
            bar.update(len(chunk))
        bar.close()
        done = {c: p for got in distributed.gather(mine) for c, p in got.items()}
        emb, windows = _final(tracks, [done[c] for c in range(len(starts))], meta, keep_windows)
        check_unreadable(emb.meta["skipped"], len(tracks), max_unreadable, "--max-unreadable")
        if rank == 0:
            save_embeddings(out, emb.vectors, emb.ids, emb.sources, emb.meta, windows)
        distributed.barrier()
    return emb


def check_unreadable(skipped: list[dict[str, str]], total: int, limit: float, key: str) -> None:
    """``AudioReadError`` listing the skipped files when they are more than ``limit`` of
    ``total`` (``key``: the setting that raises the limit)."""
    if total == 0 or len(skipped) / total <= limit:
        return
    listed = "; ".join(f"{shown(s['source'])} ({s['reason']})" for s in skipped[:20])
    more = f"; and {len(skipped) - 20} more" if len(skipped) > 20 else ""
    raise AudioReadError(
        f"{len(skipped)} of {total} files could not be read ({len(skipped) / total:.1%}, more "
        f"than the {limit:.0%} allowed): {listed}{more}",
        hint=f"fix or remove those files, or allow more with {key}",
    )


def _final(
    tracks: Sequence[Track], parts: list[Part], meta: dict[str, Any], keep_windows: bool
) -> tuple[EmbeddingSet, EmbeddingSet | None]:
    """Track vectors (window means) of the readable tracks; their windows when kept."""
    cnt = np.concatenate([p[1] for p in parts])
    reasons = {i: r for p in parts for i, r in p[2].items()}
    skipped = [
        {"id": t.id, "source": t.source, "reason": reasons[t.id]} for t in tracks if t.id in reasons
    ]
    kept = np.flatnonzero(cnt > 0)
    if len(kept) == 0:
        check_unreadable(skipped, len(tracks), 0.0, "--max-unreadable")
    win = np.concatenate([p[0] for p in parts if p[0].size], axis=0)
    owner = np.repeat(np.arange(len(kept)), cnt[kept])
    sums = np.zeros((len(kept), win.shape[1]), dtype=np.float64)
    np.add.at(sums, owner, win)
    vectors = (sums / cnt[kept][:, None]).astype(np.float32)
    ids, sources = [tracks[i].id for i in kept], [tracks[i].source for i in kept]
    meta = {**meta, "dim": int(vectors.shape[1]), "windows": bool(keep_windows)}
    meta["skipped"] = skipped
    emb = EmbeddingSet(vectors, ids, sources, meta)
    if not keep_windows:
        return emb, None
    wids = [f"{ids[o]}#{k}" for o, k in zip(owner, _rank_within(cnt[kept]), strict=True)]
    wmeta = {**meta, "kind": "windows", "track_index": owner.tolist()}
    return emb, EmbeddingSet(win, wids, [sources[o] for o in owner], wmeta)


def _rank_within(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., c-1 for each count c, concatenated."""
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(int(counts.sum())) - starts
