"""CLI commands of the data area: ``prepare`` (clip cache) and ``demo-data`` (built-in corpus).

Example:
    $ audioclr demo-data demo/ --seed 0
    $ audioclr prepare demo/audio cache/ --sample-rate 22050 --workers 2
"""

from __future__ import annotations

import argparse

MAX_LISTED_REJECTS = 20


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``prepare`` and ``demo-data`` to ``sub``."""
    p = sub.add_parser(
        "prepare",
        help="decode a folder of audio once into a clip cache (resumable)",
        description="Decode, downmix and resample every audio file under SRC into memory-mapped "
        "shards in CACHE. Rerunning only processes new or changed files; bad files are "
        "skipped and listed in CACHE/rejects.csv.",
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

    s = prepare_cache(
        args.src,
        args.cache,
        sample_rate=args.sample_rate,
        dtype=args.dtype,
        workers=args.workers,
        min_duration=args.min_duration,
        progress=not args.no_progress,
    )
    speed = s.audio_seconds / s.wall_seconds if s.wall_seconds > 0 else 0.0
    print(
        f"prepared {s.cache_dir}: {s.added} added ({s.audio_seconds / 60:.1f} min of audio, "
        f"{speed:.0f}x realtime), {s.unchanged} unchanged, {s.removed} removed, "
        f"{len(s.rejects)} rejected"
    )
    for path, reason in s.rejects[:MAX_LISTED_REJECTS]:
        print(f"  rejected {path}: {reason}")
    if len(s.rejects) > MAX_LISTED_REJECTS:
        print(f"  ... and {len(s.rejects) - MAX_LISTED_REJECTS} more")
    if s.rejects:
        print(f"  full list: {s.cache_dir / 'rejects.csv'}")
    return 0


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
