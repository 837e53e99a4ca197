"""CLI command ``benchmark``: the real-recording suite in one command (parsing and dispatch only).

A YAML with an ``ablation`` section runs the suite once per recipe (``pipelines/ablation.py``).

Example:
    $ audioclr benchmark benchmarks/suite.yaml --out bench_out pretrain.minutes=1
    $ audioclr benchmark benchmarks/ablation.yaml --out ablation_out ablation.layers=[last]
"""

from __future__ import annotations

import argparse
import shlex
import sys

from audioclr.cli.overrides import add_overrides


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``benchmark`` to ``sub``."""
    p = sub.add_parser(
        "benchmark",
        help="real-recording suite: pretrain, probes vs baselines, retrieval, report",
        description="Prepare the music pool, pretrain within a budget, export, probe every task "
        "(SSL vs random-init vs MFCC, label fractions, seeds) and run same-track retrieval; "
        "writes OUT/report.json, report.md, report.png. Finished stages are skipped on rerun. "
        "Data sets: data_root, else $AUDIOCLR_DATA, else ~/.cache/audioclr-data "
        "(build them with benchmarks/datasets/build_all.py). A YAML with an 'ablation' section "
        "(benchmarks/ablation.yaml) runs the suite once per recipe at a shared budget and "
        "writes OUT/ablation.md and ablation.json.",
    )
    p.add_argument("config", help="suite YAML, e.g. benchmarks/suite.yaml or ablation.yaml")
    p.add_argument("--out", default="bench_out", help="output folder (default bench_out)")
    add_overrides(p, "pretrain.minutes=1 probe.seeds=[0]")
    p.set_defaults(func=run_benchmark_cmd)


def run_benchmark_cmd(args: argparse.Namespace) -> int:
    from audioclr.pipelines.ablation import run_ablation
    from audioclr.pipelines.bench_config import AblationConfig, load_benchmark_config
    from audioclr.pipelines.benchmark import run_benchmark

    out = args.out
    cfg = load_benchmark_config(args.config, args.overrides)
    command = "audioclr " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if isinstance(cfg, AblationConfig):
        run_ablation(cfg, out, command=command)
        print(f"report: {out}/ablation.md")
    else:
        run_benchmark(cfg, out, command=command)
        print(f"report: {out}/report.md")
    return 0
