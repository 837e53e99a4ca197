"""Search parameters measured on the catalogue itself: the cheapest ``nprobe`` (with
``quantizer_nprobe`` and ``k_factor``) whose recall@k reaches a target, on a seeded sample of the
index's own tracks.

How many lists a query must visit depends on the data, not only on its size: at 1e6 x 256-d,
``IVF8192,PQ64np`` reaches recall@10 0.98 at nprobe 4 on isotropic clusters but 0.68 at nprobe
16 on vectors with the variance spectrum of audioclr's own embeddings (0.90 needs nprobe 64;
``benchmarks/results/retrieval-1m.md``; the default layout has changed since, the lesson not).
So ``index build --large`` measures instead of guessing: each sampled track is a query (itself
excluded, as ``audioclr query --track`` does), its exact top-k comes from brute force over the
exact vectors on disk, and the settings are tried from the cheapest up.

Example:
    >>> tix = build_large("emb/", "big_index/")
    >>> params, recall = tune_search(tix, target=0.9)
    >>> tix.set_params(params); tix.save("big_index/")
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np
from faiss.contrib.exhaustive_search import knn_ground_truth

from audioclr.errors import RetrievalError
from audioclr.search import faisshelpers as fh
from audioclr.search.build import mapped_chunks
from audioclr.search.index import TrackIndex

QUERIES = 256  # sampled tracks: recall to about +-0.02


KF_STEPS = (1, 2, 4)  # k_factor tried at each nprobe: the index's own, twice it, four times it


def ladder(index: faiss.Index, k_factor: float = 1.0) -> list[tuple[int, int, float]]:
    """``(nprobe, quantizer_nprobe, k_factor)`` settings from the cheapest up: nprobe doubling
    from 8 to the list count (a nested quantizer visits at least 64 of its lists, and at least
    nprobe); at each, ``k_factor`` times :data:`KF_STEPS`. More candidates to re-rank is what
    4-bit codes need as the catalogue grows: at 1e7 power-law data (``IVF65536,PQ64x4fsr``),
    recall@10 0.78 / 0.84 / 0.88 with k_factor 16 / 32 / 64 at nprobe 256; the tuning there
    picks nprobe 512, k_factor 64 (``benchmarks/results/retrieval-10m.md``).

    Example:
        >>> ladder(faiss.index_factory(8, "IDMap2,IVF16,PQ4x4fs"), 32.0)[:4]
        [(8, 1, 32.0), (8, 1, 64.0), (8, 1, 128.0), (16, 1, 32.0)]
    """
    ivf = faiss.try_extract_index_ivf(fh.inner_index(index))
    if ivf is None:
        return []
    quantizer = faiss.try_extract_index_ivf(ivf.quantizer)
    inner = quantizer.nlist if quantizer is not None else 1
    steps, p = [], 8
    while True:
        for f in KF_STEPS:
            steps.append((min(p, ivf.nlist), min(max(64, p), inner), k_factor * f))
        if p >= ivf.nlist:
            return steps
        p *= 2


def tune_search(
    tix: TrackIndex,
    target: float = 0.9,
    k: int = 10,
    queries: int = QUERIES,
    seed: int = 0,
    chunk: int = 262_144,
) -> tuple[fh.SearchParams, float]:
    """The cheapest setting of :func:`ladder` whose recall@``k`` on ``queries`` sampled tracks of
    the large index ``tix`` reaches ``target`` (else the last, most thorough one), and that recall.
    ``tix`` keeps its parameters; apply the result with ``tix.set_params``."""
    if tix.rerank is None:
        raise RetrievalError(
            "only a large index (exact vectors on disk) can be tuned",
            hint="build it with: audioclr index build --large",
        )
    store, n = tix.rerank, len(tix.rerank)  # row i = id i; run it before removing tracks
    ids = np.sort(np.random.default_rng(seed).choice(tix.table.ids, min(queries, n), False))
    xq = np.array(store[ids], dtype=np.float32)
    blocks = mapped_chunks(Path(store.filename), chunk)  # sequential: a map with read-ahead
    truth = knn_ground_truth(xq, blocks, min(k + 1, n), faiss.METRIC_INNER_PRODUCT)[1]
    truth = [t[t != i][:k] for t, i in zip(truth, ids, strict=True)]  # itself excluded
    before, best = tix.params, (tix.params, 0.0)
    try:
        for nprobe, qnp, kf in ladder(tix.index, before.k_factor):
            params = replace(before, nprobe=nprobe, quantizer_nprobe=qnp, k_factor=kf)
            tix.set_params(params)
            found = tix.search(xq, k, ids.tolist())[1]
            pairs = zip(found, truth, strict=True)
            best = (params, float(np.mean([len(np.intersect1d(f, t)) / k for f, t in pairs])))
            if best[1] >= target:
                break
    finally:
        tix.set_params(before)
    return best
