"""Retrieval benchmark: build time, memory, queries/s and recall@k vs exact, per index type.

Synthetic clustered embeddings (seeded): ``--clusters`` unit centres (default one per 100
vectors) in ``--dim`` dimensions, each point a centre plus Gaussian noise (``--spread`` per
dimension), L2-normalised. Queries are fresh points from the same distribution. Exact ground
truth comes from brute-force inner product. Each type is swept over its search knobs; the fastest
setting with recall@k >= ``--target`` is printed last. Queries/s are given per wall second and per
CPU-second of this process (on a shared machine the second shows what the threads can do).
Target at 1e6 x 256 on 2 threads: recall@10 >= 0.95 at >= 5,000 queries/s.

The index is built by ``TrackIndex.build`` (what ``audioclr index build`` runs). Each setting is
searched three ways, interleaved over ``--rounds`` rounds (best round kept): the raw FAISS
``index.search``; ``TrackIndex.search(xq, k)``; and ``TrackIndex.search(xq, k, exclude)`` with an
``exclude`` list, as ``audioclr query`` calls it (``Querier.query_many``: it asks FAISS for
``k + 1`` and drops the excluded id per query in Python). The overhead of the product's path is
printed next to the raw figure.

    python benchmarks/retrieval.py --sizes 100000 --types ivfpq          # quick (~1 min)
    python benchmarks/retrieval.py --sizes 100000 --types flat,hnsw,ivfflat,ivfpq
    python benchmarks/retrieval.py --sizes 1000000 --types ivfpq --nprobe 8,16,32 --k-factor 8

Past memory (type ``large``, the default above ``--ram-max`` vectors): the vectors are written
chunk by chunk straight into an embeddings folder on disk (``--workdir``; n x dim x 4 bytes:
10 GB at 1e7 x 256), exact ground truth is brute force over that memory map in chunks
(``faiss.contrib.exhaustive_search.knn_ground_truth``), and the index is built by
``audioclr.search.build.build_large`` (what ``audioclr index build --large`` runs: memory-mapped
chunks, IVF-PQ with 64-byte codes, exact vectors on disk) in a child process, so its peak RSS
(``ru_maxrss``) is the build's alone; it is then loaded with ``mmap=True`` (inverted lists mapped
from the file) and searched through ``TrackIndex.search`` (PQ candidates re-ranked against the
memory-mapped exact vectors). ``--report`` writes the figures as markdown.
Target at 1e7 x 256 on 2 threads: <= 64 bytes/vector plus ids, recall@10 >= 0.90 at >= 1,000
queries/s.

    nice -n 10 python benchmarks/retrieval.py --sizes 10000000 --queries 5000 --gt-queries 1000 \
        --report benchmarks/results/retrieval-10m.md
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import faiss
import numpy as np
from faiss.contrib.exhaustive_search import knn_ground_truth

from audioclr.atomic import atomic_write_text
from audioclr.data.workers import die_with_parent
from audioclr.evaluate.store import TABLE, VECTORS, EmbeddingSet
from audioclr.machine import cpu_model
from audioclr.search import faisshelpers as fh
from audioclr.search.build import build_large, mapped_chunks, train_sample_size
from audioclr.search.index import TrackIndex
from audioclr.search.tune import tune_search

TYPES = {  # name -> (factory for n, dim) and the knob sweep as SearchParams keyword dicts
    "flat": lambda n, d: "Flat",
    "hnsw": lambda n, d: "HNSW32,Flat",
    "ivfflat": lambda n, d: f"IVF{_nlist(n)},Flat",
    "ivfpq": lambda n, d: f"IVF{_nlist(n)},PQ{d // 2}x4fs,RFlat",
    "ivfpq1": lambda n, d: f"IVF{_nlist(n)},PQ{d}x4fs,RFlat",
}
NLIST: list[int] = []  # --nlist override


def _nlist(n: int) -> int:
    return NLIST[0] if NLIST else int(2 ** round(np.log2(4 * np.sqrt(n))))  # as in default_factory


def sweep(name: str, args: argparse.Namespace) -> list[dict]:
    """The search settings tried for index type ``name``."""
    if name == "hnsw":
        return [{"ef_search": e} for e in args.ef_search]
    if name == "ivfflat":
        return [{"nprobe": p} for p in args.nprobe]
    if name.startswith("ivfpq"):
        return [{"nprobe": p, "k_factor": f} for p in args.nprobe for f in args.k_factor]
    return [{}]


@dataclass
class Synth:
    """The seeded distribution the benchmark draws from: unit ``centres`` ``(clusters, dim)``,
    noise of std ``spread`` per dimension, and ``shape`` ``(dim, dim)`` (``None``: isotropic),
    the map that gives both centres and noise the variance spectrum of real embeddings."""

    centres: np.ndarray
    spread: float
    shape: np.ndarray | None = None


def power_law_shape(dim: int, alpha: float, rng: np.random.Generator) -> np.ndarray | None:
    """``diag(sqrt(l)) R``: per-direction variances ``l_i`` proportional to ``i ** -alpha``
    (mean 1, so the total variance is the isotropic one) along the axes of a seeded random
    rotation ``R``; ``None`` for ``alpha == 0`` (isotropic, the data of earlier runs)."""
    if alpha == 0:
        return None
    var = np.arange(1, dim + 1, dtype=np.float64) ** -alpha
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    rot = q * np.sign(np.diag(r))  # a uniformly random rotation
    return (np.sqrt(var / var.mean())[:, None] * rot).astype(np.float32)


def make_synth(n: int, args: argparse.Namespace) -> tuple[Synth, np.random.Generator]:
    """The distribution for size ``n`` from the flags, and the generator to draw points with."""
    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((args.clusters or max(1, n // 100), args.dim), np.float32)
    shape = power_law_shape(args.dim, args.alpha, rng)
    if shape is not None:
        centres = centres @ shape
    faiss.normalize_L2(centres)
    return Synth(centres, args.spread, shape), rng


def describe(synth: Synth, alpha: float) -> str:
    """One line on the data for the report."""
    spectrum = (
        "isotropic"
        if synth.shape is None
        else f"variance spectrum i^-{alpha:g} along random axes (centres and noise)"
    )
    return (
        f"{len(synth.centres):,} Gaussian clusters (unit centres, noise {synth.spread}/dim on "
        f"average; {spectrum}), L2-normalised"
    )


def clustered_chunks(n: int, synth: Synth, rng: np.random.Generator, chunk: int = 100_000):  # noqa: ANN201 (a generator of (chunk, dim) float32 arrays)
    """Normalised points around random ``synth.centres``, ``chunk`` rows at a time (bounded
    memory)."""
    centres = synth.centres
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        x = centres[rng.integers(0, len(centres), m)]  # draw order as in earlier runs
        noise = rng.standard_normal((m, centres.shape[1]), np.float32)
        x += synth.spread * (noise if synth.shape is None else noise @ synth.shape)
        faiss.normalize_L2(x)
        yield x


def clustered(n: int, synth: Synth, rng: np.random.Generator) -> np.ndarray:
    """``(n, dim)`` normalised points of ``synth``, in RAM."""
    return np.vstack(list(clustered_chunks(n, synth, rng))).reshape(n, synth.centres.shape[1])


def write_embeddings(folder: Path, n: int, synth: Synth, rng: np.random.Generator) -> None:
    """An embeddings folder of ``n`` clustered vectors, written chunk by chunk (never all in RAM);
    no manifest (a folder made by hand), so loading it hashes nothing."""

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / VECTORS, "wb") as fh_out:
        header = {"descr": "<f4", "fortran_order": False, "shape": (n, synth.centres.shape[1])}
        np.lib.format.write_array_header_2_0(fh_out, header)
        for x in clustered_chunks(n, synth, rng):
            x.tofile(fh_out)
    ids = [f"t{i}" for i in range(n)]
    table = {"format_version": 1, "ids": ids, "sources": [""] * n, "meta": {"layer": "last"}}
    (folder / TABLE).write_text(json.dumps(table))


def rss_bytes() -> int:
    """Resident memory of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def private_gib() -> float:
    """Anonymous (private) resident memory of this process now, GiB: what RSS holds beyond
    file pages, which the kernel can drop (``RssAnon`` in ``/proc/self/status``; 0 elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))
    except (OSError, StopIteration):
        return 0.0
    return kib / 2**20


def timed_search(
    search: Callable[[np.ndarray], np.ndarray], xq: np.ndarray, batch: int
) -> tuple[np.ndarray, float, float]:
    """Ids ``(nq, k)`` from ``search`` over batches of ``xq``, queries/s of wall time, and
    queries per CPU-second of this process.

    On a shared machine wall-clock q/s understates the index; q per CPU-second times the thread
    count estimates what the same threads would do uncontended (conservatively: OpenMP spinning
    also burns CPU time).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    ids = np.vstack([search(xq[s : s + batch]) for s in range(0, len(xq), batch)])
    return ids, len(xq) / (time.perf_counter() - t0), len(xq) / (time.process_time() - c0)


def search_paths(tix: TrackIndex, k: int) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The raw FAISS search and the product's, each ``xq -> I (nq, k)``."""
    return {
        "raw index.search": lambda q: tix.index.search(q, k)[1],
        "TrackIndex.search": lambda q: tix.search(q, k)[1],
        "TrackIndex.search, exclude (CLI)": lambda q: tix.search(q, k, [None] * len(q))[1],
    }


def product_overhead_us(xq: np.ndarray, k: int, batch: int) -> float:
    """CPU microseconds per query that ``TrackIndex.search`` adds around FAISS (query checks,
    normalised copy, dropping the excluded id from ``k + 1`` results), timed alone on this
    thread's CPU clock: steadier than a difference of two wall-clock rates on shared cores."""
    from audioclr.search.index import _drop_excluded

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 1 << 20, (len(xq), k + 1))
    scores = rng.random((len(xq), k + 1), dtype=np.float32)
    c0 = time.thread_time()
    for s in range(0, len(xq), batch):
        q = xq[s : s + batch]
        fh.normalize(q, "query vectors")
        _drop_excluded(scores[s : s + batch], ids[s : s + batch], k, [None] * len(q))
    return (time.thread_time() - c0) / len(xq) * 1e6


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of the exact top-k that the approximate top-k recovers."""
    return float(
        np.mean(
            [len(np.intersect1d(f, t)) / truth.shape[1] for f, t in zip(found, truth, strict=True)]
        )
    )


def run_type(
    name: str, xb: np.ndarray, xq: np.ndarray, gt: np.ndarray, args: argparse.Namespace
) -> None:
    """Build one index type, then sweep its knobs; prints one row per setting."""
    n, d = xb.shape
    factory = TYPES[name](n, d)
    print(
        f"  {factory}: estimated memory {fh.estimate_memory_bytes(factory, n, d) / 2**20:.0f} MiB",
        flush=True,
    )
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    emb = EmbeddingSet(xb, [f"t{i}" for i in range(n)], [""] * n)
    tix = TrackIndex.build(emb, factory, seed=args.seed, max_train=args.max_train or 65_536)
    t_build = time.perf_counter() - t0
    mem = (rss_bytes() - rss0) / 2**20
    print(
        f"  TrackIndex.build in {t_build:.1f} s, RSS +{mem:.0f} MiB (with the normalised copy "
        "of the vectors that build makes)",
        flush=True,
    )
    best = None
    paths = search_paths(tix, args.k)
    for knobs in sweep(name, args):
        tix.set_params(fh.SearchParams(**knobs))
        queries = xq[: len(gt)] if name == "flat" else xq
        qps: dict[str, float] = dict.fromkeys(paths, 0.0)
        qpc: dict[str, float] = dict.fromkeys(paths, 0.0)
        for _ in range(args.rounds):
            for label, search in paths.items():
                ids, wall, cpu = timed_search(search, queries, args.batch)
                qps[label], qpc[label] = max(qps[label], wall), max(qpc[label], cpu)
                if label == "raw index.search":
                    rec = recall_at_k(ids[: len(gt)], gt)
        raw, cli = qps["raw index.search"], qps["TrackIndex.search, exclude (CLI)"]
        print(
            f"  {name:8s} {str(knobs):36s} recall@{args.k}={rec:.4f} "
            + "  ".join(f"{label} {qps[label]:7.0f} q/s" for label in paths)
            + f"  (CLI path {cli / raw - 1:+.1%} vs raw; {qpc['raw index.search']:.0f} q/CPU-s)",
            flush=True,
        )
        if rec >= args.target and (best is None or raw > best["q/s"]):
            best = {
                **knobs,
                f"recall@{args.k}": round(rec, 4),
                "q/s": round(raw),
                "q/s TrackIndex.search (CLI)": round(cli),
                "q/CPU-s": round(qpc["raw index.search"]),
            }
    print(f"  best {name}: {best if best else 'none reached the target recall'}", flush=True)
    extra = product_overhead_us(xq, args.k, args.batch)
    print(
        f"  TrackIndex.search adds {extra:.1f} CPU-us per query around FAISS (normalised copy, "
        f"k + 1 results, excluded id dropped in a Python loop), measured alone",
        flush=True,
    )
    if best:
        print(
            f"  like for like: on the same index, queries, batch ({args.batch}) and "
            f"{args.threads} threads, the product's search path (TrackIndex.search with an "
            f"exclude list, as audioclr query) makes {best['q/s TrackIndex.search (CLI)']} q/s "
            f"vs {best['q/s']} q/s for raw index.search [{cpu_model()}]",
            flush=True,
        )
    del tix


def _build_child(emb: Path, folder: Path, args: argparse.Namespace, parent: int, out) -> None:  # noqa: ANN001
    die_with_parent(parent)  # a killed benchmark must not leave a build running
    faiss.omp_set_num_threads(args.threads)
    t0 = time.perf_counter()
    tix = build_large(
        emb,
        folder,
        args.factory,
        seed=args.seed,
        max_train=args.max_train,
        verify=False,
        progress=True,
    )
    out.put((time.perf_counter() - t0, tix.table.factory))


def _quantizer_note(factory: str) -> str:
    if "HNSW" in factory:
        return " and their HNSW graph"
    return " in an IVF of their own, with a direct map" if "(IVF" in factory else ""


def stored_code_bytes(index: faiss.Index) -> tuple[int, int]:
    """Bytes of code a vector, and the bytes the inverted lists hold beyond ``ntotal`` codes
    (fast-scan's ``BlockInvertedLists`` pad each list to whole blocks of 32 codes; plain lists
    hold exactly ``ntotal``)."""
    ivf = faiss.extract_index_ivf(index)
    lists = faiss.downcast_InvertedLists(ivf.invlists)
    sizes = np.array([lists.list_size(i) for i in range(ivf.nlist)], dtype=np.int64)
    if not isinstance(lists, faiss.BlockInvertedLists):
        return ivf.code_size, 0
    stored = int(np.sum(-(-sizes // lists.n_per_block))) * lists.block_size
    return ivf.code_size, stored - int(sizes.sum()) * ivf.code_size


def single_query_ms(
    tix: TrackIndex, xq: np.ndarray, args: argparse.Namespace, best: tuple | None
) -> str:
    """Milliseconds per query, one query a call (what ``audioclr query --track`` and the search
    page do), at the best setting of the sweep: batches share the coarse quantizer's BLAS work and
    single queries do not; one markdown line."""
    if best is None:
        return "one query a call: not timed (no setting reached the target)"
    qnp = best[0] if best[0] != "-" else fh.SearchParams().quantizer_nprobe
    tix.set_params(fh.SearchParams(nprobe=best[1], k_factor=best[2], quantizer_nprobe=qnp))
    ms = []
    for _ in range(args.rounds):
        _ids, w, _c = timed_search(lambda q: tix.search(q, args.k)[1], xq[:200], 1)
        ms.append(1000 / w)
    print(f"  one query a call: {min(ms):.2f} ms", flush=True)
    return (
        f"one query a call at that setting (200 queries, best of {args.rounds}): "
        f"{min(ms):.3f} ms a query ({1000 / min(ms):.0f} queries/s)"
    )


def run_tuning(tix: TrackIndex, xq: np.ndarray, gt: np.ndarray, args: argparse.Namespace) -> str:
    """What ``index build --large`` does after building: :func:`tune_search` on the index's own
    tracks, then the chosen setting timed on the benchmark's queries; one markdown line."""
    before = tix.params
    t0 = time.perf_counter()
    params, own = tune_search(tix, args.target, k=args.k, seed=args.seed)
    t_tune = time.perf_counter() - t0
    tix.set_params(params)
    wall = 0.0
    for _ in range(args.rounds):
        ids, w, _c = timed_search(lambda q: tix.search(q, args.k)[1], xq, args.batch)
        wall = max(wall, w)
    tix.set_params(before)
    rec = recall_at_k(ids[: len(gt)], gt)
    line = (
        f"- the build's own tuning (`tune_search`, target {args.target}, 256 of its own tracks, "
        f"{t_tune:.0f} s) picks nprobe {params.nprobe}, quantizer_nprobe "
        f"{params.quantizer_nprobe}, k_factor {params.k_factor:g} (recall@{args.k} {own:.3f} on "
        f"its own tracks): recall@{args.k} **{rec:.4f} at {wall:.0f} q/s** on the queries above"
    )
    print(" ", line[2:], flush=True)
    return line


def run_large(n: int, args: argparse.Namespace, rows: list[str]) -> None:
    """The past-memory path at size ``n``: data on disk, chunked exact search, ``build_large`` in
    a child process, mmap load, re-ranked search swept over nprobe x k_factor. Appends markdown
    rows to ``rows``."""
    work = Path(args.workdir or tempfile.mkdtemp(prefix="retrieval-large-"))
    emb, folder = work / f"emb-{n}", work / f"index-{n}"
    saved, queries = work / f"run-{n}.json", work / f"queries-{n}.npz"
    state = json.loads(saved.read_text()) if args.reuse and saved.is_file() else {}
    synth, rng = make_synth(n, args)
    if "t_gt" in state and queries.is_file() and (emb / VECTORS).is_file():
        with np.load(queries) as z:
            xq, gt = z["xq"], z["gt"]
        print(f"n={n}: reusing the data, queries and exact top-{args.k} in {work}", flush=True)
    else:
        state = {}
        t0 = time.perf_counter()
        write_embeddings(emb, n, synth, rng)
        xq = clustered(args.queries, synth, rng)
        state["t_data"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        gt = knn_ground_truth(
            xq[: args.gt_queries],
            mapped_chunks(emb / VECTORS, 262_144),
            args.k,
            faiss.METRIC_INNER_PRODUCT,
        )[1]
        state["t_gt"] = time.perf_counter() - t0
        if args.keep:
            np.savez(queries, xq=xq, gt=gt)
            atomic_write_text(saved, json.dumps(state))
    t_data, t_gt = state["t_data"], state["t_gt"]
    print(
        f"n={n} dim={args.dim} clusters={len(synth.centres)}: data on disk {t_data:.0f} s "
        f"({(emb / VECTORS).stat().st_size / 2**30:.1f} GiB); exact search over the memory map "
        f"for {len(gt)} queries {t_gt:.0f} s",
        flush=True,
    )
    other = args.factory is not None and state.get("factory") not in (None, args.factory)
    if "t_build" not in state or other or not (folder / "manifest.json").is_file():
        ctx = multiprocessing.get_context("spawn")  # fork after OpenMP ran would hang
        queue = ctx.Queue()
        child = ctx.Process(target=_build_child, args=(emb, folder, args, os.getpid(), queue))
        child.start()
        state["t_build"], state["factory"] = queue.get()
        child.join()
        state["build_rss"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        if args.keep:
            atomic_write_text(saved, json.dumps(state))
    else:
        print(f"  reusing the index built in {state['t_build']:.0f} s", flush=True)
    t_build, factory, build_rss = state["t_build"], state["factory"], state["build_rss"]
    index_bytes = sum(f.stat().st_size for f in folder.glob("index-*.faiss"))
    store_bytes = sum(f.stat().st_size for f in folder.glob("vectors-*.npy"))
    print(
        f"  build_large {factory}: {t_build:.0f} s; peak RSS of the build {build_rss:.2f} GiB; "
        f"index file {index_bytes / n:.1f} bytes/vector (codes + ids + id map); exact vectors on "
        f"disk {store_bytes / n:.0f} bytes/vector",
        flush=True,
    )
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t0 = time.perf_counter()
    tix = TrackIndex.load(folder, mmap=True)
    t_load = time.perf_counter() - t0
    built_with = tix.params  # what build_large saved: the tuning starts from it
    best = None
    results = []
    nested = "(IVF" in factory
    for qnp in args.quantizer_nprobe if nested else [fh.SearchParams().quantizer_nprobe]:
        for nprobe in args.nprobe:
            for kf in args.k_factor:
                tix.set_params(fh.SearchParams(nprobe=nprobe, k_factor=kf, quantizer_nprobe=qnp))
                wall = cpu = 0.0
                for _ in range(args.rounds):
                    ids, w, c = timed_search(lambda q: tix.search(q, args.k)[1], xq, args.batch)
                    wall, cpu = max(wall, w), max(cpu, c)
                rec = recall_at_k(ids[: len(gt)], gt)
                raw = recall_at_k(tix.index.search(xq[: len(gt)], args.k)[1], gt)
                results.append((qnp if nested else "-", nprobe, kf, rec, raw, wall, cpu))
                print(
                    f"  quantizer_nprobe={qnp if nested else '-'} nprobe={nprobe:3d} "
                    f"k_factor={kf:4.0f}: recall@{args.k}={rec:.4f} (PQ alone {raw:.4f}) "
                    f"{wall:7.0f} q/s ({cpu:.0f} q/CPU-s)",
                    flush=True,
                )
                if rec >= args.target and (best is None or wall > best[5]):
                    best = results[-1]
    query_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    private = private_gib()
    print(f"  best: {best if best else 'none reached the target recall'}", flush=True)
    latency = single_query_ms(tix, xq, args, best)
    tix.set_params(built_with)
    tuned = run_tuning(tix, xq, gt, args)
    code, pad = stored_code_bytes(tix.index)
    fixed = index_bytes - n * (code + 16) - pad
    rows += [
        f"## n = {n:,} x {args.dim}-d\n",
        f"- data: {describe(synth, args.alpha)}; written to disk in {t_data:.0f} s",
        f"- exact top-{args.k} for {len(gt)} queries by brute force over the memory map in "
        f"chunks: {t_gt:.0f} s",
        f"- index `{factory}` (trained on {train_sample_size(factory, n, args.max_train):,} "
        f"rows) built by `build_large` in {t_build:.0f} s ({t_build / 60:.1f} min); "
        f"peak RSS of the build process {build_rss:.2f} GiB (the embeddings: "
        f"{n * args.dim * 4 / 2**30:.1f} GiB)",
        f"- index file: {index_bytes / n:.1f} bytes/vector ({index_bytes / 2**20:.0f} MiB): "
        f"{code}-byte PQ codes + 8-byte ids in the inverted lists + 8-byte IndexIDMap2 id map "
        f"per vector, {pad / n:.1f} bytes/vector of padding (fast-scan stores codes in blocks "
        f"of 32), and {fixed / 2**20:.0f} MiB that do not grow with n (coarse centroids"
        f"{_quantizer_note(factory)}, PQ tables, headers: "
        f"{fixed / n:.1f} bytes/vector at this n); exact vectors for re-ranking on disk: "
        f"{store_bytes / n:.0f} bytes/vector",
        f"- load with `mmap=True` {t_load:.1f} s; peak RSS of the querying process "
        f"{query_rss:.2f} GiB (was {rss0:.2f} GiB before the load; includes the side table of "
        f"{n:,} track ids and the pages of memory-mapped files it touched, which the kernel "
        f"can drop; private memory after the queries: {private:.2f} GiB)",
        f"- {args.queries} queries in batches of {args.batch}, {args.threads} FAISS threads, "
        f"best of {args.rounds} rounds, through `TrackIndex.search` (re-ranking included)\n",
        f"| quantizer_nprobe | nprobe | k_factor | recall@{args.k} | recall@{args.k} PQ alone | "
        "queries/s | queries/CPU-s |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {qp} | {p} | {f:g} | {r:.4f} | {w:.4f} | {q:.0f} | {c:.0f} |"
            for qp, p, f, r, w, q, c in results
        ],
        "",
        tuned,
        "",
        latency,
        "",
        f"best reaching recall@{args.k} >= {args.target}: "
        + (
            f"quantizer_nprobe={best[0]}, nprobe={best[1]}, k_factor={best[2]:g}: recall "
            f"{best[3]:.4f} at {best[5]:.0f} q/s"
            if best
            else "none"
        ),
        "",
    ]
    if not args.keep:
        shutil.rmtree(work / f"emb-{n}")
        shutil.rmtree(folder)


def main() -> None:
    """Parse flags, make the data, run each size and type."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ints = lambda s: [int(v) for v in s.split(",")]  # noqa: E731
    p.add_argument("--sizes", type=ints, default=[100_000, 1_000_000])
    p.add_argument(
        "--types",
        default="auto",
        help=f"some of {sorted(TYPES)} or large; auto: hnsw,ivfflat,ivfpq up to --ram-max, "
        "large above",
    )
    p.add_argument("--ram-max", type=int, default=2_000_000, help="largest size for auto in-RAM")
    p.add_argument("--workdir", help="where type large writes its data and index (default: tmp)")
    p.add_argument("--keep", action="store_true", help="keep type large's data and index")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="type large: reuse the data, queries, exact top-k and index a --keep run left in "
        "--workdir (to time the queries again on an idle machine; the index is rebuilt when "
        "--factory names another); implies --keep",
    )
    p.add_argument("--report", help="write the type large figures to this markdown file")
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--clusters", type=int, default=0, help="default: one cluster per 100 vectors")
    p.add_argument(
        "--alpha",
        type=float,
        default=0.0,
        help="variance spectrum i^-alpha over random axes (0: isotropic, the hardest case; "
        "audioclr's own embeddings measure 1.6-2.0: docs in the module)",
    )
    p.add_argument("--nlist", type=int, help="IVF lists (default 4 sqrt(n), a power of two)")
    p.add_argument(
        "--spread", type=float, default=0.05, help="noise std per dimension around a unit centre"
    )
    p.add_argument("--queries", type=int, default=10_000)
    p.add_argument("--gt-queries", type=int, default=2_000, help="queries with exact ground truth")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batch", type=int, default=1_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--max-train",
        type=int,
        help="training sample (default: 65,536 in RAM; type large: build_large's, 32 per list)",
    )
    p.add_argument("--nprobe", type=ints, default=[8, 16, 32, 64])
    p.add_argument(
        "--quantizer-nprobe",
        type=ints,
        default=[16, 32, 64],
        help="type large with a nested quantizer (IVFn(IVFm,Flat)): lists of centroids visited",
    )
    p.add_argument("--factory", help="type large: this factory instead of build_large's default")
    p.add_argument(
        "--k-factor", type=lambda s: [float(v) for v in s.split(",")], default=[4.0, 8.0, 16.0]
    )
    p.add_argument("--ef-search", type=ints, default=[32, 64, 128])
    p.add_argument("--target", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds (best kept)")
    args = p.parse_args()
    faiss.omp_set_num_threads(args.threads)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"{cpu_model()}, {os.cpu_count()} cores, load average {load}; faiss {faiss.__version__}"
        f", torch {importlib.metadata.version('torch')}; {args.threads} FAISS threads"
    )
    NLIST.extend([args.nlist] if args.nlist else [])
    args.keep = args.keep or args.reuse
    rows: list[str] = []
    for n in args.sizes:
        types = args.types if args.types != "auto" else "large" if n > args.ram_max else ""
        if "large" in types.split(","):
            run_large(n, args, rows)
        types = (
            args.types if args.types != "auto" else "" if n > args.ram_max else "hnsw,ivfflat,ivfpq"
        )
        types = ",".join(t for t in types.split(",") if t and t != "large")
        if not types:
            continue
        synth, rng = make_synth(n, args)
        t0 = time.perf_counter()
        xb = clustered(n, synth, rng)
        xq = clustered(args.queries, synth, rng)
        t_gt = time.perf_counter()
        gt = faiss.knn(xq[: args.gt_queries], xb, args.k, metric=faiss.METRIC_INNER_PRODUCT)[1]
        t_exact = time.perf_counter() - t_gt
        print(
            f"n={n} dim={args.dim} clusters={len(synth.centres)} threads={args.threads}: "
            f"data {t_gt - t0:.1f} s; "
            f"exact brute force (= Flat) for {len(gt)} queries {t_exact:.1f} s "
            f"= {len(gt) / t_exact:.0f} q/s",
            flush=True,
        )
        for name in types.split(","):
            run_type(name, xb, xq, gt, args)
    if args.report and rows:
        head = [
            "# Retrieval past memory: `audioclr index build --large`\n",
            f"{date.today()}; {cpu_model()}, {os.cpu_count()} cores (shared with other jobs; "
            f"load average at the end {', '.join(f'{v:.1f}' for v in os.getloadavg())}); "
            f"faiss {faiss.__version__}\n",
            "Command: `" + " ".join(["python", *sys.argv]) + "`\n",
        ]
        atomic_write_text(args.report, "\n".join(head + rows))
        print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
