"""CLI commands of the data area: ``prepare`` (clip cache) and ``demo-data`` (built-in corpus).

Example:
    $ audioclr demo-data demo/ --seed 0
    $ audioclr prepare demo/audio cache/ --sample-rate 22050 --workers 2
    $ audioclr prepare /data/music cache-$RANK/ --shard auto   # one shard per machine
"""

from __future__ import annotations

import argparse

MAX_LISTED = 20  # rejects (and scaled files) printed; the rest are in rejects.csv


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``prepare`` and ``demo-data`` to ``sub``."""
    p = sub.add_parser(
        "prepare",
        help="decode a folder of audio once into a clip cache (resumable)",
        description="Decode, downmix and resample every audio file under SRC into memory-mapped "
        "shards in CACHE. Rerunning only processes new or changed files (and retries files "
        "that failed for a permission or I/O error); bad files are skipped and listed with "
        "the kind of failure in CACHE/rejects.csv.",
    )
    p.add_argument("src", help="folder of audio (searched recursively)")
    p.add_argument("cache", help="clip cache folder (created, or resumed if it exists)")
    p.add_argument(
        "--sample-rate", type=int, default=22050, help="target sample rate in Hz (default 22050)"
    )
    p.add_argument(
        "--dtype", choices=["int16", "float16"], default="int16", help="stored sample type"
    )
    p.add_argument(
        "--workers", type=int, default=None, help="decoding processes (default: all cores)"
    )
    p.add_argument(
        "--min-duration", type=float, default=1.0, help="reject tracks shorter than this (s)"
    )
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="prepare only shard I of N (0-based; a stable hash of each file's relative path), "
        "so N machines build N caches to train on as one (data.cache=[a,b,...]); "
        "'auto' reads RANK/WORLD_SIZE (torchrun) or SLURM_PROCID/SLURM_NTASKS (srun)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_prepare)

    d = sub.add_parser(
        "demo-data",
        help="synthesize the small labelled demo corpus (WAV + labels.csv)",
        description="Write OUT/audio/<class>/*.wav and OUT/labels.csv (labelled), and "
        "OUT/unlabeled/*.wav (other tracks, for pretraining): five synthetic instrument "
        "families playing melodies; deterministic for a given seed.",
    )
    d.add_argument("out", help="output folder")
    d.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    d.add_argument("--per-class", type=int, help="labelled tracks per class (default 32)")
    d.add_argument(
        "--unlabeled-per-class",
        type=int,
        help="unlabelled tracks per class in OUT/unlabeled/, disjoint from the "
        "labelled ones, for pretraining (default 32)",
    )
    d.set_defaults(func=_demo)


def _prepare(args: argparse.Namespace) -> int:
    from audioclr.data.cache import prepare_cache
    from audioclr.data.manifest import TRANSIENT
    from audioclr.data.scan import parse_shard, shown

    shard = parse_shard(args.shard) if args.shard else None
    s = prepare_cache(
        args.src,
        args.cache,
        sample_rate=args.sample_rate,
        dtype=args.dtype,
        workers=args.workers,
        min_duration=args.min_duration,
        progress=not args.no_progress,
        shard=shard,
    )
    speed = s.audio_seconds / s.wall_seconds if s.wall_seconds > 0 else 0.0
    where = f" (shard {shard[0]}/{shard[1]})" if shard else ""
    print(
        f"prepared {shown(s.cache_dir)}{where}: {s.added} added ({s.audio_seconds / 60:.1f} min "
        f"of audio, {speed:.0f}x realtime), {s.unchanged} unchanged, {s.removed} removed, "
        f"{len(s.rejects)} rejected"
    )
    if s.reclaimed_bytes:
        print(f"  reclaimed {s.reclaimed_bytes} bytes an interrupted run left in the shards")
    for path, peak in s.scaled[:MAX_LISTED]:
        print(f"  scaled {shown(path)}: peak {peak:.3g} above full scale, scaled to peak 1")
    _more(len(s.scaled))
    for path, kind, reason in s.rejects[:MAX_LISTED]:
        print(f"  rejected {shown(path)} ({kind}): {reason}")
    _more(len(s.rejects))
    transient = sum(r.kind in TRANSIENT for r in s.rejects)
    if transient:
        print(f"  {transient} of them may pass (permission, I/O): rerun prepare once fixed")
    if s.rejects:
        print(f"  full list: {shown(s.cache_dir / 'rejects.csv')}")
    return 0


def _more(n: int) -> None:
    if n > MAX_LISTED:
        print(f"  ... and {n - MAX_LISTED} more")


def _demo(args: argparse.Namespace) -> int:
    from audioclr.data.demo import make_demo_corpus

    sizes = {"per_class": args.per_class, "unlabeled_per_class": args.unlabeled_per_class}
    labels = make_demo_corpus(
        args.out, seed=args.seed, **{k: v for k, v in sizes.items() if v is not None}
    )
    print(
        f"wrote the demo corpus: {labels.parent / 'audio'} and {labels} (labelled), "
        f"{labels.parent / 'unlabeled'} (for pretraining)"
    )
    return 0
