"""CLI commands for the augment area: ``augment-preview``.

Example:
    $ audioclr augment-preview song.wav preview/ --views 8 --seed 0 --config clmr
"""

from __future__ import annotations

import argparse

from audioclr.cli.overrides import add_overrides


def register(sub: argparse._SubParsersAction) -> None:
    """Add this area's subcommands to ``sub``."""
    p = sub.add_parser(
        "augment-preview",
        help="write N augmented views of a clip (WAV) and their "
        "log-mel spectrograms side by side (PNG)",
    )
    p.add_argument("audio", metavar="AUDIO", help="an audio file (WAV/FLAC/OGG)")
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument("--views", type=int, default=8, help="number of views (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the view generator (default 0)")
    p.add_argument(
        "--config",
        default="timbre",
        help="augment config: a YAML path or a name under configs/augment/ (default timbre, "
        "the default pretraining recipe's views; clmr: the CLMR chain)",
    )
    p.add_argument(
        "--seconds", type=float, default=3.0, help="length of the clip, from its start (default 3)"
    )
    p.add_argument(
        "--path",
        choices=("batched", "cpu"),
        default="batched",
        help="execution path: batched torch (default) or per-example CPU",
    )
    add_overrides(p, "pitch.p=1 gain.max_gain_db=3")
    p.set_defaults(func=_preview)


def _preview(args: argparse.Namespace) -> int:
    from audioclr.augment.config import AugmentConfig
    from audioclr.augment.preview import preview_views
    from audioclr.config import load_config, resolve_config_path

    cfg = load_config(AugmentConfig, resolve_config_path(args.config, "augment"), args.overrides)
    result = preview_views(
        args.audio,
        args.out,
        views=args.views,
        seed=args.seed,
        cfg=cfg,
        seconds=args.seconds,
        path=args.path,
    )
    print(f"{len(result.descriptions)} views at {result.sample_rate} Hz ({args.path} path):")
    for i, text in enumerate(result.descriptions):
        print(f"  view_{i:02d}.wav: {text}")
    print(f"spectrograms: {result.png}")
    return 0
