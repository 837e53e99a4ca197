"""``audioclr benchmark``: the real-recording suite, stage by stage, resumable, one report.

Stages (each writes under ``OUT`` and is recorded in ``OUT/stages.json`` when done, so a rerun
skips it; an interrupted stage resumes through its own mechanism: prepare and embeddings by
chunks, pretraining from ``run/checkpoints/last.ckpt``):

1. ``prepare``: the music pool -> clip cache ``OUT/cache`` (then ``metadata``: ``metadata:``, a
   tracks.csv, attached to it, when set); ``prepare/<slug>`` for each of ``extra_pools``
   -> ``OUT/pools/<slug>/cache``
2. ``pretrain``: ``pretrain.config`` on the caches (read as one) within ``pretrain.minutes``
   -> ``OUT/run``
3. ``export``: -> ``OUT/encoder.pt``
4. ``probe``: the probe suite on every task and method (default: SSL, random-init with
   ``random_init_draws`` init draws, MFCC) -> ``OUT/probe``
5. ``retrieval``: same-track retrieval on the music segments -> ``OUT/retrieval``
6. report: ``OUT/report.json``, ``report.md``, ``report.png``

Example:
    >>> cfg = load_config(BenchmarkConfig, "benchmarks/suite.yaml", ["pretrain.minutes=1"])
    >>> report = run_benchmark(cfg, "bench_out/", command="audioclr benchmark ...")
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from audioclr.atomic import atomic_write_text
from audioclr.config import config_to_dict
from audioclr.errors import ConfigError
from audioclr.pipelines.bench_config import BenchmarkConfig, check_datasets, pool_slug

STAGES_FILE = "stages.json"
POOLS = "pools"  # OUT/pools/<slug>/cache: the clip caches of pools other than ``pool``


RECIPE_KEYS = ("recipes", "pools", "reference")  # ablation keys checked per recipe instead


def shared_config(conf: dict[str, Any]) -> dict[str, Any]:
    """``conf`` without the ablation's per-recipe keys (``RECIPE_KEYS``): what every stage of
    a run depends on. An ablation can then gain recipes and keep its finished ones; a recipe's
    own definition is checked by the ablation (``pipelines/ablation.py: check_recipe``)."""
    if not isinstance(conf.get("ablation"), dict):
        return conf
    rest = {k: v for k, v in conf["ablation"].items() if k not in RECIPE_KEYS}
    return {**conf, "ablation": rest}


class Stages:
    """``OUT/stages.json``: the run's config and, per finished stage, its info and wall time."""

    def __init__(self, out: Path, cfg: Any, log: Callable[[str], None] = print) -> None:
        self.path, self.log = out / STAGES_FILE, log
        conf = json.loads(json.dumps(config_to_dict(cfg)))
        self.data: dict[str, Any] = {"config": conf, "stages": {}}
        self.stored_config: dict[str, Any] = conf  # the config of the run found in OUT
        if self.path.is_file():
            stored = json.loads(self.path.read_text())
            if shared_config(stored.get("config") or {}) != shared_config(conf):
                raise ConfigError(
                    f"{out} holds a benchmark run with another config",
                    hint="rerun with the same config and overrides, or use a new --out",
                )
            self.stored_config = stored["config"]
            self.data = {**stored, "config": conf}

    def run(self, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run stage ``name`` unless recorded as done; returns its info (with ``wall_s``)."""
        done = self.data["stages"].get(name)
        if done is not None:
            self.log(f"[{name}] done in an earlier run ({done['wall_s']:.0f} s): skipped")
            return done
        self.log(f"[{name}] ...")
        t0 = time.perf_counter()
        info = {**fn(), "wall_s": time.perf_counter() - t0}
        self.data["stages"][name] = info
        tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)
        self.log(f"[{name}] done in {info['wall_s']:.1f} s")
        return info


def prepare_stage(cfg: BenchmarkConfig, pool: Path, out: Path) -> dict[str, Any]:
    """Stage ``prepare``: the pool -> clip cache ``out/cache`` (resumable by chunks)."""
    from audioclr.data.cache import ClipCache
    from audioclr.data.prepare import prepare_cache

    s = prepare_cache(pool, out / "cache", sample_rate=cfg.sample_rate)
    cache = ClipCache(out / "cache")
    seconds = sum(t.num_samples for t in cache.tracks) / cache.sample_rate
    return {"tracks": len(cache), "hours": seconds / 3600, "rejects": [list(r) for r in s.rejects]}


def prepare_pool_stage(
    cfg: BenchmarkConfig, folder: str, out: Path, stages: Stages
) -> dict[str, Any]:
    """Stage ``prepare/<slug>``: pool ``folder`` (under the data root) -> clip cache
    ``out/pools/<slug>/cache``; returns the stage's info with ``cache`` (its path) added."""
    dest = out / POOLS / pool_slug(folder)
    done = stages.run(
        f"prepare/{pool_slug(folder)}", lambda: prepare_stage(cfg, cfg.root / folder, dest)
    )
    return {"cache": dest / "cache", **done}


def start_run(
    cfg: BenchmarkConfig,
    out_dir: str | Path,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, Path], Path, Stages, dict[str, Any]]:
    """Check the data sets, make ``out_dir`` and its ``Stages``, run (or reuse) ``prepare``.

    Returns the data sets' paths, the output folder, its stages and the ``prepare`` stage's info.

    Example:
        >>> paths, out, stages, prep = start_run(cfg, "bench_out/")
    """
    paths = check_datasets(cfg)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(out, cfg, log)
    prep = stages.run("prepare", lambda: prepare_stage(cfg, paths["pool"], out))
    if "metadata" in paths:
        stages.run("metadata", lambda: metadata_stage(paths["metadata"], out))
    return paths, out, stages, prep


def metadata_stage(tracks: Path, out: Path) -> dict[str, Any]:
    """Stage ``metadata`` (with ``metadata:`` set): ``tracks`` -> ``out/cache/metadata.json``."""
    from audioclr.data.metadata import attach_metadata

    s = attach_metadata(out / "cache", tracks)
    return {"columns": s.columns, "tracks": s.tracks_with_metadata, "without": s.tracks_without}


def report_head(cfg: BenchmarkConfig, stages: Stages, command: str) -> dict[str, Any]:
    """The first keys of a run's report: ``meta`` (machine, command, data root), ``config``,
    ``stages``.

    Example:
        >>> report = {**report_head(cfg, stages, "audioclr benchmark ..."), "probe": probe}
    """
    from audioclr.machine import machine_meta

    return {
        "meta": {**machine_meta(command), "data_root": str(cfg.root)},
        "config": stages.data["config"],
        "stages": stages.data["stages"],
    }


def pretrain_config(
    cfg: BenchmarkConfig,
    out: Path,
    cache: Path | list[Path] | None = None,
    extra: Sequence[str] = (),
) -> Any:
    """``pretrain.config`` + ``pretrain.overrides`` + ``extra`` (an ablation recipe's) + the
    cache (default ``out/cache``; a list: read as one), run folder ``out/run`` and budget."""
    from audioclr.config import load_config, resolve_config_path
    from audioclr.ssl.config import PretrainConfig

    p = cfg.pretrain
    cache = out / "cache" if cache is None else cache
    ours = [
        f"data.cache={json.dumps([str(c) for c in cache]) if isinstance(cache, list) else cache}",
        f"run.dir={out / 'run'}",
        f"trainer.max_minutes={p.minutes}",
        f"trainer.max_steps={p.max_steps}",
    ]
    return load_config(
        PretrainConfig, resolve_config_path(p.config, "pretrain"), [*p.overrides, *extra, *ours]
    )


def pretrain_stage(
    cfg: BenchmarkConfig,
    out: Path,
    cache: Path | list[Path] | None = None,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    """Stage ``pretrain`` into ``out/run`` (resumes from its last checkpoint)."""
    from audioclr.ssl.checkpoint import LAST, checkpoint_dir
    from audioclr.ssl.io import safe_torch_load
    from audioclr.ssl.train import precision_for, pretrain

    pcfg = pretrain_config(cfg, out, cache, extra)
    last = checkpoint_dir(pcfg.run_dir) / LAST
    t0 = time.perf_counter()
    pretrain(pcfg, resume=last.is_file())
    steps = int(safe_torch_load(last, "checkpoint")["global_step"])
    return {
        "steps": steps,
        "minutes": (time.perf_counter() - t0) / 60,
        "batch_size": pcfg.trainer.batch_size,
        "method": pcfg.method,
        "encoder": pcfg.model.encoder,
        "precision": precision_for(pcfg),
    }


def export_stage(out: Path) -> dict[str, Any]:
    """Stage ``export``: ``out/run`` -> ``out/encoder.pt``."""
    from audioclr.ssl.export import export_encoder, load_encoder

    path = export_encoder(out / "run", out / "encoder.pt")
    return {"path": str(path), "encoder_id": load_encoder(path).encoder_id}


def suite_config(cfg: BenchmarkConfig, paths: dict[str, Path], layer: str = "all") -> Any:
    """The probe-suite config of the benchmark's tasks (labels made absolute) at ``layer``."""
    from audioclr.evaluate.suite import SuiteConfig, TaskConfig

    p = cfg.probe
    tasks = [
        TaskConfig(
            name=t.name,
            labels=str(paths[f"task:{t.name}"]),
            fractions=list(p.fractions),
            seeds=list(p.seeds),
            heads=list(t.heads),
            layer=layer,
        )
        for t in p.tasks
    ]
    return SuiteConfig(
        tasks=tasks,
        methods=list(p.methods),
        probe=p.probe,
        hop_seconds=p.hop_seconds,
        batch_size=p.batch_size,
        device=cfg.device,
        random_init_seed=cfg.random_init_seed,
        random_init_draws=cfg.random_init_draws,
        encoder_bn=p.encoder_bn,
    )


def _probe(cfg: BenchmarkConfig, paths: dict[str, Path], out: Path) -> dict[str, Any]:
    from audioclr.evaluate.suite import run_suite

    run_suite(suite_config(cfg, paths), out / "encoder.pt", out / "probe")
    return {"report": str(out / "probe" / "report.json")}


def retrieval_stage(cfg: BenchmarkConfig, paths: dict[str, Path], out: Path) -> dict[str, Any]:
    """Stage ``retrieval``: ``out/encoder.pt`` and baselines -> ``out/retrieval``."""
    from audioclr.pipelines.bench_retrieval import retrieval_benchmark

    kinds = {"same_track": None, "same_release": paths.get("retrieval_release")}
    res = {
        kind: retrieval_benchmark(
            paths["retrieval"],
            out / "encoder.pt",
            out / "retrieval",
            list(cfg.probe.methods),
            list(cfg.retrieval.k),
            cfg.sample_rate,
            cfg.random_init_seed,
            cfg.device,
            cfg.retrieval.factory,
            cfg.random_init_draws,
            relevance_csv=relevance,
            per_query_path=out / "retrieval" / f"{kind}_per_query.npz",
            encoder_bn=cfg.probe.encoder_bn,
        )
        for kind, relevance in kinds.items()
        if kind == "same_track" or relevance
    }
    path = out / "retrieval" / "retrieval.json"
    atomic_write_text(path, json.dumps(res, indent=1))
    return {"report": str(path)}


def run_benchmark(
    cfg: BenchmarkConfig, out_dir: str | Path, command: str = "", log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run (or resume) every stage of the suite; writes and returns the combined report."""
    from audioclr.pipelines.bench_report import write_benchmark_report

    paths, out, stages, prep = start_run(cfg, out_dir, log)
    pools = [{"cache": out / "cache", **prep}]
    pools += [prepare_pool_stage(cfg, folder, out, stages) for folder in cfg.extra_pools]
    cache = None if len(pools) == 1 else [p["cache"] for p in pools]
    pre = stages.run("pretrain", lambda: pretrain_stage(cfg, out, cache))
    exp = stages.run("export", lambda: export_stage(out))
    probe = stages.run("probe", lambda: _probe(cfg, paths, out))
    ret = stages.run("retrieval", lambda: retrieval_stage(cfg, paths, out))
    report = {
        **report_head(cfg, stages, command),
        "pretrain": {
            "config": cfg.pretrain.config,
            "method": pre.get("method"),  # the objective, which overrides may change
            "budget_minutes": cfg.pretrain.minutes,
            "max_steps": cfg.pretrain.max_steps,
            "pool_folders": cfg.pools,
            "pool_tracks": sum(p["tracks"] for p in pools),
            "pool_hours": sum(p["hours"] for p in pools),
            "steps": pre["steps"],
            "minutes": pre["minutes"],
            "batch_size": pre["batch_size"],
            "precision": pre.get("precision"),  # None: a stage recorded before it was
            "encoder_id": exp["encoder_id"],
        },
        "probe": json.loads(Path(probe["report"]).read_text()),
        "retrieval": json.loads(Path(ret["report"]).read_text()),
    }
    files = write_benchmark_report(report, out)
    log(f"[report] wrote {files['md']}, {files['json']}, {files['png']}")
    return report
