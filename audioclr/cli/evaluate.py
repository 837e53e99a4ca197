"""CLI commands for evaluation: ``embed``, ``probe``, ``probe-suite``.

Example:
    $ audioclr embed enc.pt my_music/ emb/ --layer all --hop-seconds 1.5 --keep-windows
    $ audioclr probe enc.pt labels.csv out/ task.fractions=[0.1,1.0] task.heads=[linear,knn]
    $ audioclr probe emb/ tags.csv probe_out/ task.multilabel=true probe.max_epochs=50 probe.k=10
    $ audioclr probe-suite configs/probe/demo.yaml --encoder enc.pt --out out/ device=cpu
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from audioclr.cli.overrides import add_overrides


def _embed(args: argparse.Namespace) -> int:
    from audioclr.evaluate import distributed
    from audioclr.evaluate.embed import embed_track_list, resolve_device
    from audioclr.evaluate.suite import SuiteConfig, TaskConfig
    from audioclr.evaluate.tracks import open_tracks, shown
    from audioclr.ssl.export import load_encoder

    device = str(resolve_device(args.device or SuiteConfig.device))
    loaded = load_encoder(args.encoder, map_location=device)
    data = args.data[0] if len(args.data) == 1 else args.data  # several: clip caches as one
    tracks = open_tracks(data, loaded.sample_rate)
    meta = {
        "encoder_path": str(Path(args.encoder).resolve()),
        "data": ",".join(str(Path(d).resolve()) for d in args.data),
    }
    emb = embed_track_list(
        loaded,
        tracks,
        args.out,
        args.layer or TaskConfig.layer,
        args.hop_seconds,
        args.batch_size or SuiteConfig.batch_size,
        args.keep_windows,
        device,
        meta,
        chunk_size=args.chunk_size,
        max_unreadable=args.max_unreadable,
    )
    if distributed.rank_and_world()[0] == 0:
        skipped = emb.meta["skipped"]
        for s in skipped:
            print(f"skipped {shown(s['source'])}: {s['reason']}", file=sys.stderr)
        print(
            f"wrote {args.out}: {len(emb.ids)} tracks x {emb.dim} "
            f"(layer {args.layer or TaskConfig.layer}, encoder {loaded.encoder_id})"
            + (f"; skipped {len(skipped)} unreadable files (listed above)" if skipped else "")
        )
    return 0


def _print_summary(report: dict) -> None:
    if "files" not in report:  # under torchrun, a rank other than 0: rank 0 reports
        return
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


def _with_methods(args: argparse.Namespace) -> list[str]:
    """The overrides plus ``methods=[...]`` from ``--methods`` (KEY=VALUE words it swallowed
    go back to the overrides)."""
    words = args.methods or []
    methods = [w for w in words if "=" not in w]
    rest = [*args.overrides, *(w for w in words if "=" in w)]
    return rest + ([f"methods=[{','.join(methods)}]"] if methods else [])


def _task_lists(args: argparse.Namespace) -> tuple[dict[str, list[str]], list[str]]:
    """``--heads`` / ``--corruptions`` (set on every task) and the KEY=VALUE words they
    swallowed (back to the overrides)."""
    lists, swallowed = {}, []
    for key in ("heads", "corruptions"):
        words = getattr(args, key) or []
        swallowed += [w for w in words if "=" in w]
        if [w for w in words if "=" not in w]:
            lists[key] = [w for w in words if "=" not in w]
    return lists, swallowed


def _on_every_task(cfg: Any, lists: dict[str, list[str]]) -> Any:
    """``cfg`` with ``lists`` set on every task (re-validated, errors name the task's key)."""
    tasks = [dataclasses.replace(t, **lists) for t in cfg.tasks]
    return dataclasses.replace(cfg, tasks=tasks) if lists else cfg


def _probe(args: argparse.Namespace) -> int:
    from audioclr.config import load_config
    from audioclr.evaluate.suite import SuiteConfig, run_suite

    task = {"name": Path(args.labels).stem, "labels": str(args.labels)}
    lists, swallowed = _task_lists(args)
    overrides = [
        ("tasks.0." + o[len("task.") :]) if o.startswith("task.") else o
        for o in [*_with_methods(args), *swallowed]
    ]
    cfg = _on_every_task(load_config(SuiteConfig, None, overrides, base={"tasks": [task]}), lists)
    _print_summary(run_suite(cfg, args.encoder_or_embeddings, args.out))
    return 0


def _probe_suite(args: argparse.Namespace) -> int:
    from audioclr.config import load_config, resolve_config_path
    from audioclr.evaluate.suite import SuiteConfig, run_suite

    lists, swallowed = _task_lists(args)
    path = resolve_config_path(args.suite, "probe")
    cfg = _on_every_task(load_config(SuiteConfig, path, [*_with_methods(args), *swallowed]), lists)
    _print_summary(run_suite(cfg, args.encoder, args.out))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    # defaults None: SuiteConfig's, read when the command runs (building the parser stays light)
    p.add_argument(
        "--hop-seconds", type=float, default=None, help="window hop (default: the window length)"
    )
    p.add_argument(
        "--batch-size", type=int, default=None, help="windows per encoder batch (default 64)"
    )
    p.add_argument("--device", default=None, help="auto|cpu|cuda (default auto: cuda if any)")


def _methods_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--methods",
        nargs="+",
        metavar="METHOD",
        help="methods to probe (same as methods=[...]), e.g. --methods encoder "
        "hear:hearbaseline.naive random_init mfcc; hear:<module>[:<weights>] runs any "
        "importable HEAR 2021 module",
    )


def _task_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--heads",
        nargs="+",
        metavar="HEAD",
        help="heads of every task (same as task.heads=[...]): linear mlp knn finetune "
        "finetune:K (the encoder fine-tuned, its first K layers frozen)",
    )
    p.add_argument(
        "--corruptions",
        nargs="+",
        metavar="NAME:LEVEL",
        help="also test every probe on corrupted test audio, e.g. noise:20 noise:10 noise:0 "
        "mp3:32 ogg:32 lowpass:3400 gain:-20 reverb:0.8 shift:0.5",
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``embed``, ``probe`` and ``probe-suite``."""
    p = sub.add_parser(
        "embed",
        help="frozen embeddings of every track (resumable)",
        description="Embed every track of DATA (audio folder, labels CSV or clip cache) "
        "with a frozen exported encoder; writes OUT/embeddings.npy + tracks.json + "
        "manifest.json. Unreadable files are skipped and listed. Under torchrun each process "
        "embeds its share of the chunks and rank 0 writes the folder.",
    )
    p.add_argument("encoder", help="exported encoder (.pt)")
    p.add_argument(
        "data",
        nargs="+",
        help="folder of audio, labels CSV, or clip cache (several clip caches: read as one)",
    )
    p.add_argument("out", help="output embeddings folder")
    p.add_argument(
        "--layer",
        default=None,
        help="last | a layer name | all (intermediate layers, averaged; the default, as probes)",
    )
    p.add_argument(
        "--keep-windows", action="store_true", help="also write per-window vectors (OUT/windows)"
    )
    p.add_argument(
        "--chunk-size",
        type=int,
        default=64,
        help="tracks per resumable chunk (under torchrun: the unit shared between processes)",
    )
    p.add_argument(
        "--max-unreadable",
        type=float,
        default=0.05,
        help="largest share of files that may be skipped as unreadable (default %(default)s); "
        "more fails, listing them",
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
    _methods_option(p)
    _task_options(p)
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
    _methods_option(p)
    _task_options(p)
    p.set_defaults(func=_probe_suite)
