"""Build a track index from embeddings that do not fit in RAM.

The embeddings are read memory-mapped, one chunk at a time (each chunk's mapping is dropped
after use, so the process never holds more than a chunk of them); the index is trained on a
seeded sample of rows and filled chunk by chunk. The default type, :func:`large_factory`, is
IVF-PQ with 4-bit fast-scan codes of the residuals, 32 bytes a vector at 256-d, behind a flat
coarse quantizer (``"IVF65536,PQ64x4fsr"`` at 1e7); from 131,072 lists the coarse quantizer is
itself an IVF (``"IVF131072(IVF256,Flat)"``). A factory with many lists
gets its coarse centroids from two-level k-means (``faiss.contrib.clustering``; see
:func:`audioclr.search.faisshelpers.train_index`): 65,536 centroids from 2.1M rows in minutes
where flat k-means needs hours on a few cores, and every vector is filed in its exactly
nearest list (:func:`audioclr.search.faisshelpers.exact_assignment`). While the codes go into the
index, the normalised exact vectors go to ``vectors-<generation>.npy`` beside it, which
:mod:`audioclr.search.rerank` reads memory-mapped to re-rank each query's ``k * k_factor``
candidates. The 4-bit codes and their ids are read into RAM on load (about 52 bytes a vector
with padding and ids: 0.5 GB at 1e7; FAISS copies fast-scan's blocked lists even with
``faiss.IO_FLAG_MMAP``); with an 8-bit PQ factory, ``TrackIndex.load(..., mmap=True)`` maps the
inverted lists instead.

Example:
    >>> tix = build_large("emb/", "big_index/")     # "IVF65536,PQ64x4fsr" at 1e7
    >>> tix = TrackIndex.load("big_index/", mmap=True)
    >>> D, I = tix.search(xq, k=10)                  # 320 PQ candidates re-ranked exactly
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import IO

import faiss
import numpy as np
from tqdm import tqdm

from audioclr.atomic import atomic_write
from audioclr.errors import RetrievalError
from audioclr.evaluate.store import VECTORS, EmbeddingSet, load_embeddings
from audioclr.lock import folder_lock
from audioclr.search import faisshelpers as fh
from audioclr.search.index import TrackIndex
from audioclr.search.rerank import open_store
from audioclr.search.sidetable import TABLE, SideTable, read_table

CHUNK = 65_536  # rows read, normalised and added at a time (64 MiB at 256-d)
MAX_CODE_BYTES = 32  # 4-bit residual codes: with fast-scan's block padding, well within 64
K_FACTOR = 32.0  # 4-bit codes: re-rank 32 candidates per neighbour (measured: large_factory)
PER_LIST = 128  # vectors per inverted list that large_factory aims at
NESTED_MIN = 131_072  # lists from which the coarse quantizer is itself an IVF


def large_factory(n: int, dim: int) -> str:
    """IVF + 4-bit fast-scan PQ of the residuals to the list centroids, ``m / 2`` bytes a
    vector, ``m`` the largest divisor of ``dim`` up to 64 (32-byte codes at 256-d).

    Lists: about :data:`PER_LIST` vectors each (at least ``2 sqrt(n)``), a power of two. The
    coarse quantizer is flat (exact, BLAS over a batch of queries) up to 65,536 lists; from
    :data:`NESTED_MIN` it is itself an IVF over the centroids (``sqrt(nlist)`` lists of
    centroids, ``quantizer_nprobe`` of them visited per query), and vectors are assigned to
    their exactly nearest list while adding (``exact_assignment``).

    Measured at 1e7 x 256-d (``benchmarks/results/retrieval-10m.md``, recall@10 after exact
    re-ranking, 2 cores): on data with the variance spectrum of audioclr's own embeddings,
    which needs many lists visited, 8-bit codes (``PQ64np``) reached 0.895 at 172 queries/s;
    4-bit fast-scan codes of the vectors themselves (FAISS's ``x4fs``: ``PQ128x4fs``, 64 bytes)
    0.903 at 871 behind a nested quantizer and 0.904 at 1,118 behind a flat one (batches of
    1,000 queries: the flat quantizer ranks 65,536 centroids by BLAS faster than the nested
    one visits 64 of its lists). Coding the residuals (``x4fsr``) makes 32-byte codes as
    accurate as 64-byte ones at 1e6 (recall@10 0.897 vs 0.900 at nprobe 128, k_factor 16)
    and faster to scan: this default reaches 0.912 at 1,949 queries/s on the power-law data at
    1e7 with the build's own tuning (nprobe 512, k_factor 64). Fast scan stores each list in
    whole blocks of 32 codes: about 16 codes of padding a list, 3.4 bytes a vector at 150 a list.
    ``IVFn_HNSW32`` quantizers filed only 27 % of the vectors in their nearest list at 1e7.

    Example:
        >>> large_factory(10_000_000, 256), large_factory(1_000_000, 256)
        ('IVF65536,PQ64x4fsr', 'IVF8192,PQ64x4fsr')
        >>> large_factory(100_000, 80), large_factory(20_000_000, 256)
        ('IVF1024,PQ40x4fsr', 'IVF131072(IVF256,Flat),PQ64x4fsr')
    """
    m = max(d for d in range(1, 2 * MAX_CODE_BYTES + 1) if dim % d == 0)
    nlist = 2 ** max(4, round(math.log2(max(2 * math.sqrt(n), n / PER_LIST))))
    if nlist < NESTED_MIN:
        return f"IVF{nlist},PQ{m}x4fsr"
    return f"IVF{nlist}(IVF{2 ** round(math.log2(math.sqrt(nlist)))},Flat),PQ{m}x4fsr"


def large_params(**given: float) -> fh.SearchParams:
    """Search parameters of a large index: ``given`` ones, else :data:`K_FACTOR` and the defaults.

    Example:
        >>> large_params(nprobe=64).k_factor, large_params(k_factor=8).k_factor
        (32.0, 8)
    """
    return fh.SearchParams(**{"k_factor": K_FACTOR, **given})


def nlist_of(factory: str) -> int:
    """The IVF list count of a factory string (0 without IVF).

    Example:
        >>> nlist_of("IVF65536(IVF256,Flat),PQ128x4fs"), nlist_of("IVF8_HNSW32,PQ4")
        (65536, 8)
        >>> nlist_of("HNSW32")
        0
    """
    m = re.match(r"(?:\w+,)*IVF(\d+)", factory)
    return int(m.group(1)) if m else 0


def train_sample_size(factory: str, n: int, max_train: int | None) -> int:
    """Rows to train on: ``max_train`` if given, else 32 per IVF list (at least 65,536)."""
    if max_train is not None:
        return min(n, max_train)
    return min(n, max(65_536, 32 * nlist_of(factory)))


def mapped_chunks(path: Path, chunk: int, rows: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Float32 copies of consecutive ``chunk``-row slices of the ``.npy`` at ``path`` (or of the
    given sorted ``rows``), each read through a fresh memory map that is dropped afterwards."""
    n = np.load(path, mmap_mode="r").shape[0] if rows is None else len(rows)
    for start in range(0, n, chunk):
        mm = np.load(path, mmap_mode="r", allow_pickle=False)
        part = mm[start : start + chunk] if rows is None else mm[rows[start : start + chunk]]
        yield np.array(part, dtype=np.float32)
        del mm, part


def build_large(
    embeddings: str | Path,
    folder: str | Path,
    factory: str | None = None,
    params: fh.SearchParams | None = None,
    seed: int = 0,
    max_train: int | None = None,
    chunk: int = CHUNK,
    progress: bool = False,
    verify: bool = True,
) -> TrackIndex:
    """Index the embeddings folder ``embeddings`` into the index folder ``folder``, reading the
    vectors in memory-mapped chunks; writes the exact vectors for re-ranking beside the index.

    ``verify=False`` skips the sha256 check of the embeddings (sizes are still checked).
    Returns the saved index, its re-ranking vectors memory-mapped.
    """
    emb = load_embeddings(embeddings, mmap=True, verify=verify)
    path, (n, dim) = Path(embeddings) / VECTORS, emb.vectors.shape
    if n == 0:
        raise RetrievalError(
            "cannot build an index from an empty embeddings set", hint="embed some tracks first"
        )
    factory = factory or large_factory(n, dim)
    index = fh.make_index(factory, dim)
    if not index.is_trained:
        size = train_sample_size(factory, n, max_train)
        rows = np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
        sample = np.vstack(list(mapped_chunks(path, chunk, rows)))
        fh.train_index(index, fh.normalize(sample, "embeddings (training sample)"), seed)
        del sample
    folder = Path(folder)
    with folder_lock(folder, "index build", RetrievalError):
        return _fill_and_save(emb, path, folder, index, factory, params, chunk, progress)


def _fill_and_save(
    emb: EmbeddingSet,
    path: Path,
    folder: Path,
    index: faiss.Index,
    factory: str,
    params: fh.SearchParams | None,
    chunk: int,
    progress: bool,
) -> TrackIndex:
    n, dim = emb.vectors.shape
    generation = read_table(folder).generation if (folder / TABLE).is_file() else 0
    table = SideTable.for_embeddings(
        emb.meta,
        dim,
        factory,
        asdict(params or large_params()),
        rerank=f"vectors-{generation + 1:06d}.npy",
    )
    ids = table.append(list(emb.ids), list(emb.sources))  # 0..n-1: row i of the store is id i
    del emb

    def fill(fh_out: IO[bytes]) -> None:
        header = {"descr": "<f4", "fortran_order": False, "shape": (n, dim)}
        np.lib.format.write_array_header_2_0(fh_out, header)
        bar = tqdm(total=n, desc="adding", unit="vec", unit_scale=True, disable=not progress)
        with fh.exact_assignment(index):
            for start, part in zip(range(0, n, chunk), mapped_chunks(path, chunk), strict=True):
                xb = fh.normalize(part, f"embeddings rows {start}..{start + len(part) - 1}")
                xb.tofile(fh_out)
                index.add_with_ids(xb, ids[start : start + len(xb)])
                bar.update(len(xb))
        bar.close()

    atomic_write(folder / table.rerank, fill)
    tix = TrackIndex(index, table, rerank=open_store(folder / table.rerank, dim))
    tix.save(folder)
    for old in folder.glob("vectors-*.npy"):  # an earlier build's vectors, no longer named
        if old.name != table.rerank:
            old.unlink()
    return tix
