"""CLI command ``audioclr demo``: the whole journey on the built-in demo corpus."""

from __future__ import annotations

import argparse
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from audioclr.pipelines.demo import run_demo

    return run_demo(
        Path(args.out), args.cli_main, pretrain_minutes=args.pretrain_minutes, config=args.config
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``demo`` to ``sub``."""
    p = sub.add_parser(
        "demo",
        help="the whole journey on the built-in demo corpus (reruns reuse finished steps)",
        description="demo corpus -> prepare the unlabelled part -> augment preview -> pretrain "
        "(SimCLR, melcnn) -> export -> probe the labelled part with baselines -> embed -> FAISS "
        "index -> retrieval evaluation and queries, then a summary. Every step prints the exact "
        "command to run it alone; a rerun skips finished steps.",
    )
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument(
        "--pretrain-minutes", type=float, default=4.0, help="pretraining budget cap (default 4)"
    )
    p.add_argument("--config", default="demo", help="pretrain config name or path (default demo)")
    p.set_defaults(func=_demo)
