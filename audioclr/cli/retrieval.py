"""CLI commands for retrieval: ``index build|add|remove|info``, ``query``, ``retrieval-eval``.

Example:
    $ audioclr index build emb/ my_index/
    $ audioclr index build big_emb/ big_index/ --large     # larger than RAM: IVF-PQ + re-rank
    $ audioclr query big_index/ --track t123 --mmap
    $ audioclr query my_index/ --track piano/a.wav -k 5
    $ audioclr query my_index/ --file new_song.wav --json
    $ audioclr query shard0/ shard1/ shard2/ --track t123 --mmap   # one front over shards
    $ audioclr retrieval-eval my_index/ --labels labels.csv -k 10
"""

from __future__ import annotations

import argparse
import json
import sys


def _search_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nprobe", type=int, help="IVF: inverted lists visited per query")
    p.add_argument("--ef-search", type=int, help="HNSW: candidate list size")
    p.add_argument(
        "--quantizer-nprobe",
        type=int,
        help="IVF behind an IVF quantizer (large indexes): lists of centroids visited per query",
    )
    p.add_argument(
        "--k-factor", type=float, help="re-ranking: exact scores for k * k_factor candidates"
    )


def _mmap_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mmap",
        action="store_true",
        help="memory-map the index's inverted lists (IVF with 8-bit PQ/SQ; fast-scan lists, the "
        "--large default, are still read into RAM); the manifest is then checked by size only",
    )


def _flag_params(args: argparse.Namespace) -> dict:
    """The search parameters given on the command line."""
    flags = (
        ("nprobe", args.nprobe),
        ("ef_search", args.ef_search),
        ("k_factor", args.k_factor),
        ("quantizer_nprobe", args.quantizer_nprobe),
    )
    return {k: v for k, v in flags if v is not None}


def _apply_search_flags(tix, args: argparse.Namespace) -> None:  # noqa: ANN001
    from dataclasses import asdict, replace

    changes = _flag_params(args)
    if changes:
        tix.set_params(replace(tix.params, **changes))
        print(f"search parameters: {asdict(tix.params)}", file=sys.stderr)


def _locked(folder: str, command: str):  # noqa: ANN202
    """The index folder's writer lock, held from load to save (no lost update)."""
    from audioclr.errors import RetrievalError
    from audioclr.lock import folder_lock

    return folder_lock(folder, command, RetrievalError)


def _build(args: argparse.Namespace) -> int:
    with _locked(args.index, "index build"):
        return _build_locked(args)


def _build_locked(args: argparse.Namespace) -> int:
    from audioclr.evaluate.store import load_embeddings
    from audioclr.search import faisshelpers as fh
    from audioclr.search.index import TrackIndex

    if args.large:
        return _build_large(args)
    emb = load_embeddings(args.embeddings)
    factory = args.factory or fh.default_factory(len(emb.ids), emb.dim)
    mib = fh.estimate_memory_bytes(factory, len(emb.ids), emb.dim) / 2**20
    print(
        f"building {factory!r} over {len(emb.ids)} tracks x {emb.dim}-d: about {mib:.0f} MiB",
        file=sys.stderr,
    )
    max_train = args.max_train or 65_536
    tix = TrackIndex.build(emb, factory, seed=args.seed, max_train=max_train, progress=True)
    _apply_search_flags(tix, args)
    tix.save(args.index)
    print(f"wrote {args.index}: {tix.index.ntotal} tracks")
    return 0


def _build_large(args: argparse.Namespace) -> int:
    from audioclr.search import faisshelpers as fh
    from audioclr.search.build import build_large, large_params

    given = _flag_params(args)
    tix = build_large(
        args.embeddings,
        args.index,
        args.factory,
        large_params(**given),
        args.seed,
        args.max_train,
        progress=True,
    )
    if args.target_recall > 0 and not {"nprobe", "quantizer_nprobe"} & set(given):
        from audioclr.search.tune import QUERIES, tune_search

        params, recall = tune_search(tix, args.target_recall, seed=args.seed)
        tix.set_params(params)
        tix.save(args.index)
        short = "" if recall >= args.target_recall else " (short of the target: the most thorough)"
        sample = min(QUERIES, len(tix.table))
        print(
            f"search parameters: nprobe {params.nprobe}, quantizer_nprobe "
            f"{params.quantizer_nprobe}, k_factor {params.k_factor:g}: recall@10 {recall:.3f} on "
            f"{sample} of its own tracks "
            f"(target {args.target_recall}){short}",
            file=sys.stderr,
        )
    n, dim = tix.rerank.shape
    mib = fh.estimate_memory_bytes(tix.table.factory, n, dim) / 2**20
    print(
        f"wrote {args.index}: {n} tracks, {tix.table.factory!r} (about {mib:.0f} MiB in RAM) + "
        f"{tix.rerank.nbytes / 2**30:.1f} GiB of exact vectors on disk for re-ranking"
    )
    return 0


def _add(args: argparse.Namespace) -> int:
    from audioclr.evaluate.store import load_embeddings
    from audioclr.search.index import TrackIndex

    with _locked(args.index, "index add"):
        tix = TrackIndex.load(args.index)
        new = tix.add(load_embeddings(args.embeddings), progress=True)
        tix.save(args.index)
    print(f"added {len(new)} tracks; {args.index} now has {tix.index.ntotal}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from audioclr.search.index import TrackIndex
    from audioclr.search.query import read_query_list

    ids = list(args.track_ids) + (read_query_list(args.list) if args.list else [])
    with _locked(args.index, "index remove"):
        tix = TrackIndex.load(args.index)
        n = tix.remove(ids)
        tix.save(args.index)
    print(f"removed {n} tracks; {args.index} now has {tix.index.ntotal}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from audioclr.search import faisshelpers as fh
    from audioclr.search.index import TrackIndex

    tix = TrackIndex.load(args.index, mmap=args.mmap)
    t = tix.table
    info = {
        "tracks": tix.index.ntotal,
        "dim": t.dim,
        "factory": t.factory,
        "metric": "cosine",
        "encoder_id": t.encoder_id,
        "encoder_path": t.encoder_path,
        "layer": t.layer,
        "sample_rate": t.sample_rate,
        "params": asdict(tix.params),
        "estimated_memory_mib": round(
            fh.estimate_memory_bytes(t.factory, len(t), t.dim) / 2**20, 1
        ),
    }
    if args.ids:
        info["track_ids"] = t.track_ids
    print(
        json.dumps(info, indent=1) if args.json else "\n".join(f"{k}: {v}" for k, v in info.items())
    )
    return 0


def _query(args: argparse.Namespace) -> int:
    from audioclr.search.index import TrackIndex
    from audioclr.search.query import Querier, format_table, read_query_list

    queries = (
        [args.track] if args.track else [args.file] if args.file else read_query_list(args.list)
    )
    kind = "track" if args.track else "file" if args.file else "auto"
    if len(args.index) > 1:
        from audioclr.search.shards import ShardedIndex

        tix = ShardedIndex.load(args.index, mmap=args.mmap)
    else:
        tix = TrackIndex.load(args.index[0], mmap=args.mmap)
    _apply_search_flags(tix, args)
    results = Querier(tix, args.encoder, args.device).query_many(queries, args.k, kind)
    for r in results:
        if r.warning:
            print(f"warning: {r.warning}", file=sys.stderr)
    print(
        json.dumps([r.to_dict() for r in results], indent=1) if args.json else format_table(results)
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from audioclr.evaluate.retrieval import Judge, evaluate_retrieval, read_labels, read_segments
    from audioclr.search.index import TrackIndex

    tix = TrackIndex.load(args.index, mmap=args.mmap)
    _apply_search_flags(tix, args)
    judge = (
        Judge(labels=read_labels(args.labels))
        if args.labels
        else Judge(segments=read_segments(args.segments))
    )
    report = evaluate_retrieval(tix, judge, args.k, args.max_queries, args.seed)
    print(
        json.dumps(report, indent=1)
        if args.json
        else "\n".join(
            f"{k}: [{v[0]:.4g}, {v[1]:.4g}]" if isinstance(v, list) else f"{k}: {v:.4g}"
            for k, v in report.items()
        )
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``index``, ``query`` and ``retrieval-eval`` to ``sub``."""
    idx = sub.add_parser("index", help="build and edit a FAISS index of track embeddings")
    isub = idx.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    b = isub.add_parser("build", help="index an embeddings folder (cosine similarity)")
    b.add_argument("embeddings", help="embeddings folder (from audioclr embed)")
    b.add_argument("index", help="index folder to write")
    b.add_argument(
        "--factory",
        help="faiss.index_factory string (default by size: Flat, HNSW32,Flat, "
        "IVF...,PQ...x4fs,RFlat)",
    )
    b.add_argument("--seed", type=int, default=0, help="seed of the training sample")
    b.add_argument(
        "--max-train",
        type=int,
        help="training sample size for IVF/PQ types (default 65,536; --large: 32 per IVF list)",
    )
    b.add_argument(
        "--large",
        action="store_true",
        help="embeddings larger than RAM: read memory-mapped in chunks, IVF with 32-byte 4-bit "
        "fast-scan PQ codes of the residuals and about 128 vectors a list (IVF65536,PQ64x4fsr at "
        "1e7 x 256-d), exact re-ranking of 32 candidates a neighbour from vectors kept on disk",
    )
    b.add_argument(
        "--target-recall",
        type=float,
        default=0.9,
        help="--large: pick the cheapest nprobe / quantizer_nprobe / k_factor whose recall@10 on a "
        "sample of the catalogue's own tracks reaches this (0: keep the defaults; skipped when "
        "--nprobe or --quantizer-nprobe is given)",
    )
    _search_flags(b)
    b.set_defaults(func=_build)
    a = isub.add_parser("add", help="add the tracks of another embeddings folder")
    a.add_argument("index")
    a.add_argument("embeddings")
    a.set_defaults(func=_add)
    r = isub.add_parser("remove", help="remove tracks by track id")
    r.add_argument("index")
    r.add_argument("track_ids", nargs="*", metavar="TRACK_ID")
    r.add_argument("--list", help="file with one track id per line")
    r.set_defaults(func=_remove)
    i = isub.add_parser("info", help="what an index holds")
    i.add_argument("index")
    i.add_argument("--ids", action="store_true", help="also list the track ids")
    i.add_argument("--json", action="store_true")
    _mmap_flag(i)
    i.set_defaults(func=_info)

    q = sub.add_parser(
        "query", help="the k most similar tracks to a track, an audio file, or a list"
    )
    q.add_argument(
        "index",
        nargs="+",
        help="an index folder; several: shards of one catalogue, answered as one "
        "(per-shard top-k merged by score)",
    )
    what = q.add_mutually_exclusive_group(required=True)
    what.add_argument("--track", help="a track id in the index (itself excluded from the results)")
    what.add_argument(
        "--file",
        help="an audio file, embedded with the index's encoder (a catalogue track's own file "
        "finds that track first)",
    )
    what.add_argument("--list", help="file with one track id or audio path per line")
    q.add_argument("-k", type=int, default=10)
    q.add_argument("--json", action="store_true", help="JSON instead of a table")
    q.add_argument("--encoder", help="exported encoder (default: the path recorded in the index)")
    q.add_argument("--device", default="cpu")
    _search_flags(q)
    _mmap_flag(q)
    q.set_defaults(func=_query)

    e = sub.add_parser(
        "retrieval-eval", help="precision/mAP/recall@k, recall vs exact search, queries/s"
    )
    e.add_argument("index")
    rel = e.add_mutually_exclusive_group(required=True)
    rel.add_argument("--labels", help="CSV track_id,label: relevant = same label")
    rel.add_argument(
        "--segments",
        help="CSV track_id,source,start_s,end_s: relevant = other non-overlapping "
        "segment of the same source",
    )
    e.add_argument("-k", type=int, default=10)
    e.add_argument("--max-queries", type=int, help="evaluate a seeded sample of this many queries")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", action="store_true")
    _search_flags(e)
    _mmap_flag(e)
    e.set_defaults(func=_evaluate)
