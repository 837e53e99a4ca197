"""Why IVF recall stops short at 1e7: coarse-cell coverage and quantizer agreement, per layout.

Reads the data, queries and exact top-k that ``benchmarks/retrieval.py --keep --workdir W``
left in ``W`` (1e7 x 256-d by default). For each list count it trains coarse centroids by
two-level k-means (what ``build_large`` does from ``TWO_LEVEL_MIN`` lists) on 32 rows a list and
prints:

- coverage at nprobe: the share of each query's exact top-k whose nearest centroid (exact
  search) is among the query's nprobe nearest centroids: the recall ceiling of an IVF index
  with exact assignment, before PQ and re-ranking;
- the flat quantizer's speed (queries/s for the nprobe nearest of ``--nprobe-max``);
- HNSW quantizer agreement: the share of database vectors an ``IndexHNSWFlat`` over the same
  centroids assigns to their exact nearest centroid, per efSearch, and its speed.

    python benchmarks/retrieval.py --sizes 10000000 --keep --workdir /work/r10m ...
    python benchmarks/retrieval_cells.py --workdir /work/r10m --nlist 8192,16384,32768,65536
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import faiss
import numpy as np
from faiss.contrib.clustering import two_level_clustering

from audioclr.machine import cpu_model


def main() -> None:
    """Parse flags and print one block per list count."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ints = lambda s: [int(v) for v in s.split(",")]  # noqa: E731
    p.add_argument("--workdir", required=True, help="a retrieval.py --keep folder")
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--nlist", type=ints, default=[8192, 16384, 32768, 65536])
    p.add_argument("--nprobe", type=ints, default=[16, 32, 64, 128])
    p.add_argument("--ef", type=ints, default=[16, 64, 128])
    p.add_argument("--queries", type=int, default=300, help="queries (with exact top-k) used")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    work = Path(args.workdir)
    with np.load(work / f"queries-{args.n}.npz") as z:
        xq, gt = z["xq"][: args.queries].copy(), z["gt"][: args.queries]
    vec = np.load(work / f"emb-{args.n}" / "embeddings.npy", mmap_mode="r")
    faiss.normalize_L2(xq)
    flat_rows = gt.ravel()
    order = np.argsort(flat_rows)
    xb = np.empty((len(flat_rows), vec.shape[1]), np.float32)
    xb[order] = vec[flat_rows[order]]
    faiss.normalize_L2(xb)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{cpu_model()}, {os.cpu_count()} cores, load average {load}; faiss {faiss.__version__}")
    print(f"n={args.n:,}; {len(xq)} queries x top-{gt.shape[1]} exact neighbours")
    for nlist in args.nlist:
        rng = np.random.default_rng(args.seed)
        rows = np.sort(rng.choice(len(vec), min(len(vec), 32 * nlist), replace=False))
        xt = np.array(vec[rows], dtype=np.float32)
        faiss.normalize_L2(xt)
        t0 = time.perf_counter()
        cents, _ = two_level_clustering(
            xt, int(np.sqrt(nlist)), nlist, seed=args.seed, min_points_per_centroid=16
        )
        faiss.normalize_L2(cents)
        t_train = time.perf_counter() - t0
        del xt
        flat = faiss.IndexFlatIP(cents.shape[1])
        flat.add(cents)
        home = flat.search(xb, 1)[1][:, 0].reshape(gt.shape)
        t0 = time.perf_counter()
        probes = flat.search(xq, max(args.nprobe))[1]
        qps = len(xq) / (time.perf_counter() - t0)
        cover = [
            np.mean([np.isin(home[i], probes[i, :k]).mean() for i in range(len(xq))])
            for k in args.nprobe
        ]
        print(
            f"nlist {nlist}: two-level k-means on {len(rows):,} rows {t_train:.0f} s; flat "
            f"quantizer {qps:.0f} q/s; coverage "
            + ", ".join(f"nprobe {k}: {c:.3f}" for k, c in zip(args.nprobe, cover, strict=True)),
            flush=True,
        )
        hnsw = faiss.IndexHNSWFlat(cents.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.add(cents)  # efConstruction 40, as index_factory's "IVFn_HNSW32" builds it
        for ef in args.ef:
            hnsw.hnsw.efSearch = ef
            t0 = time.perf_counter()
            got = hnsw.search(xb, 1)[1][:, 0]
            rate = len(xb) / (time.perf_counter() - t0)
            print(
                f"  HNSW32 efSearch {ef}: {np.mean(got == home.ravel()):.3f} of the vectors "
                f"assigned to their nearest list, {rate:.0f} vectors/s",
                flush=True,
            )


if __name__ == "__main__":
    main()
