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

import faiss
import numpy as np

from audioclr.errors import RetrievalError

STORE = "vectors.npy"


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
    xq = np.ascontiguousarray(xq, dtype=np.float32)
    cand = np.ascontiguousarray(cand, dtype=np.int64)
    D = np.empty((nq, k), dtype=np.float32)
    I = np.empty((nq, k), dtype=np.int64)
    if nq and kp:
        # FAISS's re-ranking kernel: threads over queries, reads each candidate's row straight
        # from the map (no gathered copy); it stops at a row's first -1, which FAISS puts last
        faiss.knn_inner_products_by_idx(
            faiss.swig_ptr(xq), faiss.swig_ptr(store), faiss.swig_ptr(cand),
            store.shape[1], nq, store.shape[0], kp, k,
            faiss.swig_ptr(D), faiss.swig_ptr(I), kp,
        )  # fmt: skip
    else:
        I.fill(-1)
    D[I < 0] = -np.inf
    return D, I
