"""CLI commands for evaluation: ``embed``, ``probe``, ``probe-suite``.

Example:
    $ audioclr embed enc.pt my_music/ emb/ --layer all --hop-seconds 1.5 --keep-windows
    $ audioclr probe enc.pt labels.csv out/ task.fractions=[0.1,1.0] task.heads=[linear,knn]
    $ audioclr probe emb/ tags.csv probe_out/ task.multilabel=true probe.max_epochs=50 probe.k=10
    $ audioclr probe-suite configs/probe/demo.yaml --encoder enc.pt --out out/ device=cpu
"""

from __future__ import annotations

import argparse
from pathlib import Path

from audioclr.cli.overrides import add_overrides


def _embed(args: argparse.Namespace) -> int:
    from audioclr.evaluate.embed import embed_track_list, resolve_device
    from audioclr.evaluate.tracks import open_tracks
    from audioclr.ssl.export import load_encoder

    device = str(resolve_device(args.device))
    loaded = load_encoder(args.encoder, map_location=device)
    tracks = open_tracks(args.data, loaded.sample_rate)
    meta = {
        "encoder_path": str(Path(args.encoder).resolve()),
        "data": str(Path(args.data).resolve()),
    }
    emb = embed_track_list(
        loaded,
        tracks,
        args.out,
        args.layer,
        args.hop_seconds,
        args.batch_size,
        args.keep_windows,
        device,
        meta,
    )
    print(
        f"wrote {args.out}: {len(emb.ids)} tracks x {emb.dim} "
        f"(layer {args.layer}, encoder {loaded.encoder_id})"
    )
    return 0


def _print_summary(report: dict) -> None:
    for name, task in report["tasks"].items():
        for head, by_fraction in task["verdict"].items():
            for fraction, v in by_fraction.items():
                lo, hi = v["ci95"]
                print(
                    f"{name} [{head}, {float(fraction):g} of labels]: encoder {v['verdict']} "
                    f"the best baseline ({v['baseline']}): {v['diff']:+.3f} {task['metric']} "
                    f"[{lo:+.3f}, {hi:+.3f}] (paired 95 % interval)"
                )
        for line in task.get("warnings", []):
            print(f"warning: {line}")
    print(f"report: {report['files']['md']}  (also report.json, report.png, tb/)")


def _probe(args: argparse.Namespace) -> int:
    from audioclr.config import load_config
    from audioclr.evaluate.suite import SuiteConfig, run_suite

    task = {"name": Path(args.labels).stem, "labels": str(args.labels)}
    overrides = [
        ("tasks.0." + o[len("task.") :]) if o.startswith("task.") else o for o in args.overrides
    ]
    cfg = load_config(SuiteConfig, None, overrides, base={"tasks": [task]})
    _print_summary(run_suite(cfg, args.encoder_or_embeddings, args.out))
    return 0


def _probe_suite(args: argparse.Namespace) -> int:
    from audioclr.config import load_config, resolve_config_path
    from audioclr.evaluate.suite import SuiteConfig, run_suite

    cfg = load_config(SuiteConfig, resolve_config_path(args.suite, "probe"), args.overrides)
    _print_summary(run_suite(cfg, args.encoder, args.out))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    from audioclr.evaluate.suite import SuiteConfig

    p.add_argument(
        "--hop-seconds",
        type=float,
        default=SuiteConfig.hop_seconds,
        help="window hop (default: the window length)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=SuiteConfig.batch_size,
        help="windows per encoder batch (default %(default)s)",
    )
    p.add_argument(
        "--device", default=SuiteConfig.device, help="auto|cpu|cuda (auto: cuda when available)"
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``embed``, ``probe`` and ``probe-suite``."""
    from audioclr.evaluate.suite import TaskConfig

    p = sub.add_parser(
        "embed",
        help="frozen embeddings of every track (resumable)",
        description="Embed every track of DATA (audio folder, labels CSV or clip cache) "
        "with a frozen exported encoder; writes OUT/embeddings.npy + tracks.json.",
    )
    p.add_argument("encoder", help="exported encoder (.pt)")
    p.add_argument("data", help="folder of audio, labels CSV, or clip cache")
    p.add_argument("out", help="output embeddings folder")
    p.add_argument(
        "--layer",
        default=TaskConfig.layer,
        help="last | a layer name | all (intermediate layers, averaged)",
    )
    p.add_argument(
        "--keep-windows", action="store_true", help="also write per-window vectors (OUT/windows)"
    )
    _common(p)
    p.set_defaults(func=_embed)

    p = sub.add_parser(
        "probe",
        help="linear/MLP/kNN probes with baselines on one labelled task",
        description="Probe frozen embeddings (from an exported encoder or an embeddings "
        "folder) on LABELS, against the baselines; writes a report. Settings are the keys of "
        "a probe suite (configs/probe/default.yaml) as KEY=VALUE words; task.KEY sets a key of "
        "this one task (fractions, seeds, heads, layer, windows, multilabel, data).",
    )
    p.add_argument("encoder_or_embeddings", help="exported encoder (.pt) or embeddings folder")
    p.add_argument("labels", help="labels CSV (path,label[,split] / path,tags) or folder-per-class")
    p.add_argument("out", help="output folder (report.json, report.md, report.png, tb/, emb/)")
    add_overrides(
        p,
        "task.fractions=[0.1,1.0] task.heads=[linear,knn] methods=[encoder,mfcc] "
        "probe.max_epochs=50 task.multilabel=true",
    )
    p.set_defaults(func=_probe)

    p = sub.add_parser(
        "probe-suite",
        help="several probe tasks from a YAML suite, one report",
        description="Run every task of SUITE (configs/probe/*.yaml or a path).",
    )
    p.add_argument("suite", help="suite YAML path or name under configs/probe/")
    p.add_argument("--encoder", required=True, help="exported encoder (.pt) or embeddings folder")
    p.add_argument("--out", required=True, help="output folder")
    add_overrides(p, "probe.max_epochs=50 device=cpu")
    p.set_defaults(func=_probe_suite)
