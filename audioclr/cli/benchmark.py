"""CLI command ``benchmark``: the real-recording suite in one command (parsing and dispatch only).

A YAML with an ``ablation`` section runs the suite once per recipe (``pipelines/ablation.py``);
``compare`` pairs two finished runs' encoders row by row (``pipelines/versus.py``).

Example:
    $ audioclr benchmark benchmarks/suite.yaml --out bench_out pretrain.minutes=1
    $ audioclr benchmark benchmarks/ablation.yaml --out ablation_out ablation.layers=[last]
    $ audioclr compare bench_near bench_out --out near-vs-default.md
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
    c = sub.add_parser(
        "compare",
        help="pair two benchmark runs' encoders: each row's difference with an interval",
        description="For every probe row (task, head, label fraction) and retrieval row "
        "(precision@k) of two finished 'audioclr benchmark' runs: RUN's encoder minus "
        "REFERENCE's, with a paired cluster-bootstrap 95 %% interval on the same test tracks "
        "and label-subset seeds (better / tie / worse). Needs the predictions the runs saved "
        "(probe/scores, retrieval/*_per_query.npz).",
    )
    c.add_argument("run", help="a benchmark --out folder")
    c.add_argument("reference", help="the benchmark --out folder to compare it with")
    c.add_argument("--out", help="also write the table to this markdown file")
    c.set_defaults(func=run_compare_cmd)


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


def run_compare_cmd(args: argparse.Namespace) -> int:
    from pathlib import Path

    from audioclr.atomic import atomic_write_text
    from audioclr.pipelines.versus import runs_versus, versus_lines

    text = "\n".join(versus_lines(runs_versus(Path(args.run), Path(args.reference))))
    print(text)
    if args.out:
        atomic_write_text(Path(args.out), text)
        print(f"written: {args.out}")
    return 0
