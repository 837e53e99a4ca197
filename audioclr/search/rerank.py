# ruff: noqa: E741  (D, I: the FAISS names for scores and ids)
"""Exact re-ranking of approximate candidates against vectors memory-mapped from disk.

A large index keeps only its compressed codes in RAM (64 bytes a vector for ``PQ64``). Its top
``k * k_factor`` candidates are re-scored with the exact vectors: L2-normalised float32 rows of
``vectors.npy`` beside the index, row ``i`` = FAISS id ``i``, read through a read-only memory
map, so the page cache holds what is hot and the process holds none of it. This is what FAISS's
``IndexRefineFlat`` does, without keeping ``4 * dim`` bytes a vector in RAM.

Example:
    >>> store = open_store(folder / STORE)                     # (n, dim) memory map
    >>> D, I = index.search(xq, 10 * 8)                        # approximate candidates
    >>> D, I = rerank(store, xq, I, k=10)                      # exact cosine, best first
"""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np

from audioclr.errors import RetrievalError

STORE = "vectors.npy"
QUERY_BLOCK = 256  # queries re-ranked at once: bounds the (block, candidates, dim) gather


def create_store(path: str | Path, n: int, dim: int) -> np.memmap:
    """A new ``(n, dim)`` float32 ``.npy`` memory map at ``path`` to fill row by row."""
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))


def open_store(path: str | Path, dim: int) -> np.ndarray:
    """The read-only ``(n, dim)`` float32 memory map at ``path``; errors name the file."""
    try:
        store = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise RetrievalError(
            f"cannot read the re-ranking vectors {path} ({exc})",
            hint="rebuild with: audioclr index build --large",
        ) from exc
    if store.ndim != 2 or store.shape[1] != dim or store.dtype != np.float32:
        raise RetrievalError(
            f"{path} holds {store.dtype} {store.shape}, not float32 (n, {dim})",
            hint="rebuild with: audioclr index build --large",
        )
    raw = getattr(store, "_mmap", None)
    if raw is not None and hasattr(mmap, "MADV_RANDOM"):
        # rows are read at random: without this hint the kernel reads ahead 128 KiB around
        # every 1 KiB row, filling RAM with the whole file and making each query wait on disk
        raw.madvise(mmap.MADV_RANDOM)
    return store


def rerank(
    store: np.ndarray, xq: np.ndarray, cand: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` of the candidates ``cand (nq, k')`` for normalised queries ``xq (nq, dim)``.

    Returns ``D (nq, k)`` cosine scores and ``I (nq, k)`` ids, best first; ``-1`` ids and
    ``-inf`` scores where fewer than ``k`` candidates exist (candidate ids ``-1``).
    """
    nq, kp = cand.shape
    D = np.full((nq, k), -np.inf, dtype=np.float32)
    I = np.full((nq, k), -1, dtype=np.int64)
    for s in range(0, nq, QUERY_BLOCK):
        c = cand[s : s + QUERY_BLOCK]
        valid = c >= 0
        rows = store[np.where(valid, c, 0).ravel()].reshape(len(c), kp, -1)
        scores = np.matmul(rows, xq[s : s + QUERY_BLOCK, :, None])[..., 0]
        scores[~valid] = -np.inf
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        best = np.take_along_axis(scores, order, 1)
        ids = np.where(np.isfinite(best), np.take_along_axis(c, order, 1), -1)
        D[s : s + QUERY_BLOCK, : order.shape[1]] = best
        I[s : s + QUERY_BLOCK, : order.shape[1]] = ids
    return D, I
