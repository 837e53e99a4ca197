"""``audioclr benchmark benchmarks/ablation.yaml``: the suite once per pretraining recipe.

Stages (recorded in ``OUT/stages.json`` by the benchmark's ``Stages``, skipped on rerun; a
killed run resumes where it stopped; recipes added to the config later run on their own, beside
the finished ones, while a finished recipe whose overrides or pools changed is refused):

1. ``prepare``: the pool -> one clip cache ``OUT/cache`` shared by every recipe; with
   ``ablation.pools`` (a recipe's own pool folders), ``prepare/<slug>`` for each other folder
   -> ``OUT/pools/<slug>/cache``, prepared once whichever recipes name it
2. per recipe ``R`` (``ablation.recipes``): ``R/pretrain`` (``pretrain.overrides`` + the recipe's
   overrides, shared budget, on its pool's caches: several are read as one,
   ``data.cache=[a, b]``) -> ``OUT/R/run``; ``R/export`` -> ``OUT/R/encoder.pt``;
   ``R/probe/<layer>`` for each of ``ablation.layers`` -> ``OUT/R/probe/<layer>``;
   ``R/retrieval`` -> ``OUT/R/retrieval``
3. report: ``OUT/ablation.json``, ``OUT/ablation.md`` (``ablation_report.py``; every recipe
   paired with ``ablation.reference``: ``versus.py``)

Baselines do not depend on the recipe, so they are embedded and probed once: every recipe's
``probe/<layer>/emb/<method>`` and ``retrieval/emb/<method>`` is a link into ``OUT/shared/``,
and its fitted probes ``probe/<layer>/probes/<method>`` (``evaluate/probe_cache.py``) a link into
``OUT/shared/probe-fits/`` (``share_baselines``). Methods that rebuild the encoder's architecture
(random-init) share per architecture (the folder name carries the fresh weights' id), MFCC
shares outright; inside a shared folder the methods' own cache keys (embeddings; the probes'
hash of their inputs) still decide what is reused. The encoder's own embeddings and probes stay
in the recipe's folder.

Example:
    >>> cfg = load_benchmark_config("benchmarks/ablation.yaml", ["pretrain.minutes=1"])
    >>> report = run_ablation(cfg, "ablation_out/", command="audioclr benchmark ...")
    >>> list(report["recipes"])[:2], report["reference"]
    (['clmr', 'timbre'], 'timbre')
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from audioclr.errors import AudioclrError, ConfigError
from audioclr.evaluate.methods import ENCODER, Source, get_method
from audioclr.pipelines.bench_config import AblationConfig, pool_slug
from audioclr.pipelines.benchmark import (
    Stages,
    export_stage,
    prepare_pool_stage,
    pretrain_stage,
    report_head,
    retrieval_stage,
    start_run,
    suite_config,
)

SHARED = "shared"
Caches = dict[str, dict[str, Any]]  # pool slug -> {"cache": Path, "tracks", "hours"}


def shared_name(method: str, source: Source, seed: int) -> str:
    """The shared folder of a baseline: ``<method>``, or ``<method>-<arch>`` when the method
    rebuilds the encoder's architecture (``arch``: id of its fresh weights from ``seed``)."""
    if not get_method(method).needs_encoder:
        return get_method(method).folder
    return f"{method}-{source.load(random_init_seed=seed).encoder_id}"


def share_baselines(
    folder: Path, shared: Path, methods: list[str], encoder: Path, seed: int
) -> None:
    """Link ``folder/<method>`` (a method's embeddings or fitted probes) to
    ``shared/<shared_name>`` for every method but the encoder."""
    source = Source.open(encoder)
    folder.mkdir(parents=True, exist_ok=True)
    for method in methods:
        if method == ENCODER:
            continue
        target = shared / shared_name(method, source, seed)
        target.mkdir(parents=True, exist_ok=True)
        link = folder / get_method(method).folder
        if link.is_symlink() and link.resolve() != target.resolve():
            link.unlink()  # the recipe's architecture changed since the link was made
        if not link.exists():  # relative: the output folder can be moved
            link.symlink_to(os.path.relpath(target, folder), target_is_directory=True)
        elif not link.is_symlink():
            raise AudioclrError(
                f"{link} is a folder, not a link into {shared}",
                hint="remove it; the baselines are shared across recipes",
            )


def probe_layer(
    cfg: AblationConfig, paths: dict[str, Path], rdir: Path, out: Path, layer: str
) -> dict[str, Any]:
    """Stage ``<recipe>/probe/<layer>``: the probe suite on the recipe's encoder at ``layer``."""
    from audioclr.evaluate.suite import PROBES_DIR, run_suite

    dest = rdir / "probe" / layer
    methods, encoder, seed = list(cfg.probe.methods), rdir / "encoder.pt", cfg.random_init_seed
    share_baselines(dest / "emb", out / SHARED / "probe", methods, encoder, seed)
    share_baselines(dest / PROBES_DIR, out / SHARED / "probe-fits", methods, encoder, seed)
    run_suite(suite_config(cfg, paths, layer), rdir / "encoder.pt", dest)
    return {"report": str(dest / "report.json")}


def retrieval(cfg: AblationConfig, paths: dict[str, Path], rdir: Path, out: Path) -> dict[str, Any]:
    """Stage ``<recipe>/retrieval``: the benchmark's retrieval with shared baselines."""
    share_baselines(
        rdir / "retrieval" / "emb",
        out / SHARED / "retrieval",
        list(cfg.probe.methods),
        rdir / "encoder.pt",
        cfg.random_init_seed,
    )
    return retrieval_stage(cfg, paths, rdir)


def recipe_pool(cfg: AblationConfig, name: str) -> list[str]:
    """The pool folders recipe ``name`` pretrains on: ``ablation.pools[name]``, else ``pool``
    and ``extra_pools``."""
    return list(cfg.ablation.pools.get(name, cfg.pools))


def prepare_pools(cfg: AblationConfig, out: Path, stages: Stages, prep: dict[str, Any]) -> Caches:
    """The clip cache of every pool folder a recipe names: ``pool``'s is ``OUT/cache`` (stage
    ``prepare``, ``prep``); each other folder is stage ``prepare/<slug>``, prepared once."""
    caches = {pool_slug(cfg.pool): {"cache": out / "cache", **prep}}
    for name in cfg.ablation.recipes:
        for folder in recipe_pool(cfg, name):
            if pool_slug(folder) not in caches:
                caches[pool_slug(folder)] = prepare_pool_stage(cfg, folder, out, stages)
    return caches


def recipe_definition(conf: dict[str, Any], name: str) -> dict[str, Any] | None:
    """Recipe ``name``'s overrides and pool folders in config dict ``conf`` (None if absent)."""
    ablation = conf.get("ablation", {})
    if name not in ablation.get("recipes", {}):
        return None
    pools = ablation.get("pools", {}).get(name, [conf["pool"], *conf.get("extra_pools", [])])
    return {"overrides": list(ablation["recipes"][name]), "pools": list(pools)}


def check_recipe(cfg: AblationConfig, name: str, stages: Stages, out: Path) -> None:
    """Refuse to reuse recipe ``name``'s finished stages when its overrides or pools changed
    (``ConfigError`` naming ``ablation.recipes.<name>``); records its definition in
    ``stages.json`` (``recipes``) with the next finished stage."""
    want = {"overrides": list(cfg.ablation.recipes[name]), "pools": recipe_pool(cfg, name)}
    known = stages.data.setdefault("recipes", {})
    have = known.get(name)
    if have is None and any(s.startswith(f"{name}/") for s in stages.data["stages"]):
        have = recipe_definition(stages.stored_config, name)  # a run from before "recipes"
    if have is not None and have != want:
        raise ConfigError(
            f"{out / name} was pretrained with overrides {have['overrides']} on "
            f"{have['pools']}; config key 'ablation.recipes.{name}' now gives "
            f"{want['overrides']} on {want['pools']}",
            hint=f"give the changed recipe a new name, or delete {out / name} and its stages "
            f"from {stages.path}",
        )
    known[name] = want


def run_recipe(
    cfg: AblationConfig,
    name: str,
    paths: dict[str, Path],
    out: Path,
    stages: Stages,
    caches: Caches,
) -> dict[str, Any]:
    """Pretrain (on the recipe's pool), export, probe at every layer and run retrieval for
    recipe ``name``."""
    check_recipe(cfg, name, stages, out)
    rdir, extra = out / name, list(cfg.ablation.recipes[name])
    folders = recipe_pool(cfg, name)
    mine = [caches[pool_slug(f)] for f in folders]
    cache = mine[0]["cache"] if len(mine) == 1 else [c["cache"] for c in mine]
    pre = stages.run(f"{name}/pretrain", lambda: pretrain_stage(cfg, rdir, cache, extra))
    exp = stages.run(f"{name}/export", lambda: export_stage(rdir))
    probes = {}
    for layer in cfg.ablation.layers:
        done = stages.run(
            f"{name}/probe/{layer}", lambda layer=layer: probe_layer(cfg, paths, rdir, out, layer)
        )
        probes[layer] = json.loads(Path(done["report"]).read_text())
    ret = stages.run(f"{name}/retrieval", lambda: retrieval(cfg, paths, rdir, out))
    return {
        "overrides": extra,
        "pool": {
            "folders": folders,
            "tracks": sum(c["tracks"] for c in mine),
            "hours": sum(c["hours"] for c in mine),
        },
        "pretrain": {**pre, "encoder_id": exp["encoder_id"]},
        "probe": probes,
        "retrieval": json.loads(Path(ret["report"]).read_text()),
    }


def run_ablation(
    cfg: AblationConfig, out_dir: str | Path, command: str = "", log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run (or resume) every recipe of the ablation; writes and returns the combined report."""
    from audioclr.pipelines.ablation_report import write_ablation_report

    paths, out, stages, prep = start_run(cfg, out_dir, log)
    caches = prepare_pools(cfg, out, stages, prep)
    recipes = {
        name: run_recipe(cfg, name, paths, out, stages, caches) for name in cfg.ablation.recipes
    }
    p = cfg.pretrain
    report = {
        **report_head(cfg, stages, command),
        "budget": {
            "config": p.config,
            "minutes": p.minutes,
            "max_steps": p.max_steps,
            "overrides": list(p.overrides),
        },
        "layers": list(cfg.ablation.layers),
        "reference": cfg.ablation.reference_recipe,
        "recipes": recipes,
    }
    files = write_ablation_report(report, out)
    log(f"[report] wrote {files['md']}, {files['json']}")
    return report
