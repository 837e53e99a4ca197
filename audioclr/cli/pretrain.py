"""CLI commands of the pretrain area: ``pretrain`` and ``export`` (parsing and dispatch only).

Example:
    $ audioclr pretrain --config simclr_melcnn data.cache=cache/ trainer.max_steps=2000
    $ audioclr pretrain --config simclr_melcnn data.cache=cache/ --resume
    $ audioclr export runs/simclr_melcnn encoder.pt
"""

from __future__ import annotations

import argparse

from audioclr.cli.overrides import add_overrides


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``pretrain`` and ``export`` to ``sub``."""
    p = sub.add_parser(
        "pretrain",
        help="self-supervised pretraining (SimCLR, CPC, BYOL, VICReg, Barlow Twins)",
        description="Pretrain an encoder on a prepared clip cache. Run folder: "
        "run.dir (default runs/<run.name>) with config.yaml, tb/ and checkpoints/.",
    )
    p.add_argument(
        "--config",
        default="simclr_melcnn",
        help="YAML path or a name in configs/pretrain (simclr_melcnn, "
        "simclr_samplecnn, cpc_melcnn, byol_melcnn, vicreg_melcnn, "
        "barlowtwins_melcnn, demo); default simclr_melcnn",
    )
    add_overrides(p, "data.cache=cache/ trainer.max_steps=500")
    p.add_argument(
        "--resume", action="store_true", help="continue the run from its checkpoints/last.ckpt"
    )
    p.set_defaults(func=run_pretrain)

    e = sub.add_parser(
        "export",
        help="write a run's encoder as a standalone file",
        description="Export the encoder of a pretraining run (weights plus the "
        "config needed to use them), loadable with torch.load(weights_only=True).",
    )
    e.add_argument("run", help="run folder (or a .ckpt file)")
    e.add_argument("out", help="output file, e.g. encoder.pt")
    e.set_defaults(func=run_export)


def run_pretrain(args: argparse.Namespace) -> int:
    from audioclr.config import load_config, resolve_config_path
    from audioclr.ssl.config import PretrainConfig
    from audioclr.ssl.train import pretrain

    cfg = load_config(PretrainConfig, resolve_config_path(args.config, "pretrain"), args.overrides)
    run_dir = pretrain(cfg, resume=args.resume)
    print(f"run folder: {run_dir}  (export with: audioclr export {run_dir} encoder.pt)")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from audioclr.ssl.export import export_encoder, load_encoder

    out = export_encoder(args.run, args.out)
    loaded = load_encoder(out)
    print(
        f"wrote {out}: {loaded.encoder.name} at {loaded.sample_rate} Hz, "
        f"{loaded.encoder.output_dim}-d, encoder_id {loaded.encoder_id}"
    )
    return 0
