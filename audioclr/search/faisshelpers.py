"""Thin FAISS helpers: cosine via L2 norm + inner product, factory defaults, parameters, memory.

Vectors are ``xb (n, dim)`` base and ``xq (nq, dim)`` queries, float32; searches return
``D (nq, k)`` scores (cosine similarity) and ``I (nq, k)`` int64 ids, ``-1`` where fewer than
``k`` results exist. Every index is ``faiss.index_factory(dim, factory, METRIC_INNER_PRODUCT)``
wrapped in ``IndexIDMap2``, so ids are arbitrary int64 and ``reconstruct(id)`` works.

Example:
    >>> xb = normalize(np.eye(3, dtype="float32"))
    >>> index = make_index("Flat", 3); index.add_with_ids(xb, np.array([7, 8, 9]))
    >>> index.search(xb[:1], 1)[1].tolist()
    [[7]]
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import faiss
import numpy as np
from faiss.contrib.clustering import two_level_clustering

from audioclr.config import require
from audioclr.errors import RetrievalError

EXACT_MAX = 50_000  # up to here, exact search is fast enough: "Flat"
HNSW_MAX = (
    300_000  # up to here "HNSW32,Flat"; above, IVF-PQ (4-bit fast scan) with exact re-ranking
)
TWO_LEVEL_MIN = 4096  # lists from which the coarse centroids come from two-level k-means


@dataclass
class SearchParams:
    """Search-time knobs of approximate indexes (ignored where the index has no such knob)."""

    nprobe: int = 16  # IVF: inverted lists visited per query
    ef_search: int = 128  # HNSW: candidate list size
    k_factor: float = 8.0  # Refine/RFlat: re-rank k * k_factor candidates with exact vectors
    quantizer_nprobe: int = 64  # "IVFn(IVFm,Flat)": lists of centroids the coarse quantizer visits

    def __post_init__(self) -> None:
        require(self.nprobe >= 1, "nprobe", self.nprobe, "must be >= 1")
        qnp = self.quantizer_nprobe
        require(qnp >= 1, "quantizer_nprobe", qnp, "must be >= 1")
        require(self.ef_search >= 1, "ef_search", self.ef_search, "must be >= 1")
        require(self.k_factor >= 1, "k_factor", self.k_factor, "must be >= 1")


def default_factory(n: int, dim: int) -> str:
    """A factory string for ``n`` vectors of ``dim``: exact when small, approximate when large.

    Example:
        >>> default_factory(1000, 256), default_factory(1_000_000, 256)
        ('Flat', 'IVF4096,PQ128x4fs,RFlat')
    """
    if n <= EXACT_MAX:
        return "Flat"
    if n <= HNSW_MAX:
        return "HNSW32,Flat"
    nlist = 2 ** round(math.log2(4 * math.sqrt(n)))
    m = dim // 2 if dim % 2 == 0 else dim
    return f"IVF{nlist},PQ{m}x4fs,RFlat"


def normalize(x: np.ndarray, what: str = "vectors") -> np.ndarray:
    """L2-normalised float32 copy of ``x (n, dim)``; zero or non-finite rows are errors."""
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    if x.ndim != 2:
        raise RetrievalError(f"{what} must be 2-d (n, dim), got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0))
    if bad.size:
        raise RetrievalError(
            f"{what}: row {int(bad[0])} is zero or not finite ({bad.size} such rows)",
            hint="re-embed those tracks; silent or broken audio gives empty vectors",
        )
    faiss.normalize_L2(x)
    return x


def make_index(factory: str, dim: int) -> faiss.IndexIDMap2:
    """An empty cosine index (``IndexIDMap2`` around ``index_factory``); bad strings are errors."""
    try:
        inner = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise RetrievalError(
            f"bad index factory string {factory!r} for dim {dim}",
            hint="e.g. Flat, HNSW32,Flat, IVF1024,Flat, IVF4096,PQ64x4fs,RFlat",
        ) from exc
    ivf = faiss.try_extract_index_ivf(inner)
    if ivf is not None:
        ivf.cp.spherical = True  # cosine: unit-norm centroids, else IP k-means favours long ones
        nested = faiss.try_extract_index_ivf(ivf.quantizer)
        if nested is not None:
            nested.cp.spherical = True
    return faiss.IndexIDMap2(inner)  # the Python wrapper keeps ``inner`` alive


def inner_index(index: faiss.Index) -> faiss.Index:
    """The index inside the ``IndexIDMap2`` wrapper, downcast to its real type."""
    return faiss.downcast_index(index.index)


def set_search_params(index: faiss.Index, params: SearchParams) -> None:
    """Apply ``nprobe`` / ``efSearch`` / ``k_factor`` to whichever parts of ``index`` have them."""
    inner = inner_index(index)
    ivf = faiss.try_extract_index_ivf(inner)
    if ivf is not None:
        ivf.nprobe = min(params.nprobe, ivf.nlist)
        quantizer = faiss.downcast_index(ivf.quantizer)
        if isinstance(quantizer, faiss.IndexHNSW):  # "IVFn_HNSWm": must find nprobe lists
            quantizer.hnsw.efSearch = max(params.ef_search, 2 * ivf.nprobe)
        if isinstance(quantizer, faiss.IndexIVF):  # "IVFn(IVFm,Flat)"
            quantizer.nprobe = min(params.quantizer_nprobe, quantizer.nlist)
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efSearch = params.ef_search
    if isinstance(inner, faiss.IndexRefine):
        inner.k_factor = params.k_factor


def coarse_centroids(sample: np.ndarray, nlist: int, spherical: bool, seed: int = 0) -> np.ndarray:
    """``(nlist, dim)`` k-means centroids of ``sample``: two-level k-means (``sqrt(nlist)``
    clusters, then each split in proportion to its size) from :data:`TWO_LEVEL_MIN` lists, where
    flat k-means would take hours on a few cores; unit norm when ``spherical``."""
    if nlist >= TWO_LEVEL_MIN:
        centroids, _ = two_level_clustering(
            sample, int(math.sqrt(nlist)), nlist, seed=seed, min_points_per_centroid=16
        )
    else:
        km = faiss.Kmeans(sample.shape[1], nlist, niter=20, seed=seed, spherical=spherical)
        km.train(sample)
        centroids = km.centroids
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    if spherical:
        faiss.normalize_L2(centroids)
    return centroids


def train_transforms(index: faiss.Index, sample: np.ndarray) -> np.ndarray:
    """Train the pre-transforms of ``index`` (``"PCAR224,..."``) on ``sample``; return the sample
    as the index behind them sees it (``sample`` itself when there are none).

    A PCA is applied without centring: ``x -> A x``, the rows of ``A`` orthonormal (the top
    principal directions), so inner products are those of the projections and cosine ranking
    survives. FAISS's own PCA maps ``x -> A (x - mean)``, which adds ``-<x, A^T A mean>`` to every
    score of a query: a per-vector bias that reorders an inner-product search.

    Example:
        >>> index = make_index("PCAR224,IVF1024,PQ112x4fs", 256)
        >>> train_transforms(inner_index(index), sample).shape[1]
        224
    """
    if not isinstance(index, faiss.IndexPreTransform):
        return sample
    x = sample
    for i in range(index.chain.size()):
        vt = faiss.downcast_VectorTransform(index.chain.at(i))
        if not vt.is_trained:
            vt.train(x)
            if isinstance(vt, faiss.PCAMatrix):
                faiss.copy_array_to_vector(np.zeros(vt.d_in, dtype=np.float32), vt.mean)
                vt.prepare_Ab()  # bias -A mean = 0; FAISS saves the zero mean with the index
        x = vt.apply(x)
    return x


def train_index(index: faiss.Index, sample: np.ndarray, seed: int = 0) -> None:
    """Train ``index`` (from :func:`make_index`) on normalised ``sample``.

    An IVF with at least :data:`TWO_LEVEL_MIN` lists, or with an IVF as its coarse quantizer
    (``"IVFn(IVFm,Flat)"``), gets its centroids from :func:`coarse_centroids`; a nested quantizer
    is trained on them (its own ``m`` lists over the ``n`` centroids) and keeps a direct map (the
    residuals need each centroid back). Then FAISS trains the codes on the residuals.

    Example:
        >>> index = make_index("IVF4096_HNSW32,PQ16np", 64)
        >>> train_index(index, normalize(np.random.rand(200_000, 64).astype("f4")))
    """
    inner = inner_index(index)
    reduced = train_transforms(inner, sample)  # the IVF lives after the pre-transforms
    ivf = faiss.try_extract_index_ivf(inner)
    quantizer = faiss.downcast_index(ivf.quantizer) if ivf is not None else None
    nested = isinstance(quantizer, faiss.IndexIVF)
    if quantizer is not None and quantizer.ntotal == 0 and (nested or ivf.nlist >= TWO_LEVEL_MIN):
        ip = ivf.metric_type == faiss.METRIC_INNER_PRODUCT
        centroids = coarse_centroids(reduced, ivf.nlist, ip, seed)
        quantizer.train(centroids)
        quantizer.add(centroids)
        if nested:
            quantizer.make_direct_map()
    del reduced
    with exact_assignment(index):  # the codes learn the residuals to the nearest centroids
        index.train(sample)


@contextmanager
def exact_assignment(index: faiss.Index) -> Iterator[None]:
    """While adding to ``index``: each vector goes to its nearest list, found exactly.

    A nested coarse quantizer (``"IVFn(IVFm,Flat)"``) finds a query's lists by visiting only
    ``quantizer_nprobe`` of its ``m`` lists of centroids; that is fast but approximate, and a
    vector filed in the wrong list is missed by every later query. So for the adds a flat copy
    of the same centroids (BLAS, ids in the same order) stands in; the nested one is put back
    after. Other indexes are left as they are.

    Example:
        >>> with exact_assignment(index):
        ...     index.add_with_ids(xb, ids)
    """
    ivf = faiss.try_extract_index_ivf(inner_index(index))
    nested = faiss.downcast_index(ivf.quantizer) if ivf is not None else None
    if not isinstance(nested, faiss.IndexIVF) or nested.ntotal == 0:
        yield
        return
    flat = faiss.IndexFlat(nested.d, nested.metric_type)
    flat.add(nested.reconstruct_n(0, nested.ntotal))
    ivf.quantizer = flat  # SWIG hands ``flat`` to C++ here ...
    try:
        yield
    finally:
        ivf.quantizer = nested
        flat.this.acquire()  # ... and Python takes it back, to free it (else 4 x dim x n leak)


def stores_exact(index: faiss.Index) -> bool:
    """True when exact vectors can be read back (needed to remove by rebuilding)."""
    inner = inner_index(index)
    exact = (faiss.IndexFlat, faiss.IndexHNSWFlat, faiss.IndexIVFFlat, faiss.IndexRefineFlat)
    return isinstance(inner, exact) or (
        isinstance(inner, faiss.IndexRefine)
        and isinstance(faiss.downcast_index(inner.refine_index), faiss.IndexFlat)
    )


def stored_ids(index: faiss.Index) -> np.ndarray:
    """The int64 ids ``(n,)`` of an ``IndexIDMap2``'s vectors, in storage order."""
    return faiss.vector_to_array(index.id_map).astype(np.int64)


def _readable(index: faiss.Index) -> faiss.Index:
    """The inner index, with an IVF's direct map made so that its vectors can be read back."""
    inner = inner_index(index)
    ivf = faiss.try_extract_index_ivf(inner)
    if ivf is not None and isinstance(inner, faiss.IndexIVF):
        ivf.make_direct_map()
    return inner


def reconstruct_all(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """All stored vectors ``(n, dim)`` and their int64 ids ``(n,)``, in storage order."""
    inner = _readable(index)
    xb = (
        inner.reconstruct_n(0, inner.ntotal) if inner.ntotal else np.zeros((0, index.d), np.float32)
    )
    return xb, stored_ids(index)


def reconstruct_rows(index: faiss.Index, rows: np.ndarray) -> np.ndarray:
    """The stored vectors ``(len(rows), dim)`` at storage positions ``rows`` only (a sample of
    a large index without reading the rest back). ``RuntimeError`` when the index type keeps
    no vectors to read back.

    Example:
        >>> xb = reconstruct_rows(index, np.array([0, 5]))   # rows 0 and 5 of stored_ids(index)
    """
    inner = _readable(index)
    if not len(rows):
        return np.zeros((0, index.d), np.float32)
    return np.stack([inner.reconstruct(int(r)) for r in rows]).astype(np.float32)


def estimate_memory_bytes(factory: str, n: int, dim: int) -> int:
    """A rough RAM (and file) size of an index of ``n`` vectors built from ``factory``.

    Example:
        >>> estimate_memory_bytes("Flat", 1000, 256) // 1000   # 4 bytes/float + id maps
        1080
    """
    per = 56.0  # IndexIDMap2: id_map (8) + rev_map hash entry (~48)
    fixed = 0.0
    if m := re.search(r"IVF(\d+)", factory):
        fixed += int(m.group(1)) * dim * 4
        per += 8  # ids in the inverted lists
    if m := re.match(r"HNSW(\d+)", factory):
        per += int(m.group(1)) * 2 * 4 * 1.1  # level-0 links plus upper levels
    if (m := re.search(r"IVF(\d+)_HNSW(\d+)", factory)) is not None:
        fixed += int(m.group(1)) * int(m.group(2)) * 2 * 4 * 1.1  # HNSW coarse quantizer links
    if m := re.search(r"PQ(\d+)(x4fs|x(\d+))?", factory):
        bits = 4 if m.group(2) == "x4fs" else int(m.group(3) or 8)
        per += int(m.group(1)) * bits / 8
    elif "SQ8" in factory:
        per += dim
    elif "SQfp16" in factory:
        per += 2 * dim
    elif "Flat" in factory.replace("RFlat", "").replace("Refine(Flat)", ""):
        per += 4 * dim
    if "RFlat" in factory or "Refine(Flat)" in factory:
        per += 4 * dim
    return int(fixed + per * n)
