"""Several downstream tasks in one run: embed (cached), probe every method and head, one report.

Methods come from the registry (``evaluate/methods``): ``encoder`` (the given exported encoder,
or an embeddings folder), ``random_init`` (same architecture, fresh weights, BatchNorm statistics
of the training audio; ``random_init_draws`` init draws), ``mfcc`` (MFCC statistics) and, opt-in,
``supervised`` (the random-init encoder trained from scratch on the training labels). Every
method is probed on the same splits and label fractions; a method with several init draws is
probed once per (seed, draw). Embeddings are cached under ``OUT/emb/<method>/<cache key>/`` so
reruns reuse them (and resume if interrupted). ``report.json`` records, per task, what each
method was (``methods``: display name, settings, and per draw its seed, encoder id, folder and
the training tracks its BatchNorm statistics came from).

Example (YAML, ``configs/probe/demo.yaml``)::

    tasks:
      - {name: genre, labels: demo/labels.csv, fractions: [0.1, 1.0], seeds: [0, 1, 2]}
    methods: [encoder, random_init, mfcc]

    >>> cfg = load_config(SuiteConfig, "configs/probe/demo.yaml")
    >>> run_suite(cfg, "enc.pt", "out/")["tasks"]["genre"]["verdict"]
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audioclr.config import config_to_dict, require
from audioclr.evaluate.methods import (
    DEFAULT_METHODS,
    ENCODER,
    Embedded,
    MethodSettings,
    Source,
    TrackSet,
    check_methods,
    get_method,
)
from audioclr.evaluate.probe import run_probe
from audioclr.evaluate.probe_config import HEADS, ProbeConfig
from audioclr.evaluate.probe_data import ProbeData, ProbeWarning, align
from audioclr.evaluate.report import task_warnings, verdicts, write_report


@dataclass
class TaskConfig:
    """One downstream task: its labels, how they are read, and what to probe."""

    name: str = ""
    labels: str = ""  # labels CSV (path,label[,split] or path,tags) or folder-per-class
    data: str | None = None  # audio to embed (folder or clip cache); default: the labelled files
    multilabel: bool = False
    fractions: list[float] = field(default_factory=lambda: [1.0])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    layer: str = "all"  # every block's mean and std over time; or "last", or a block name
    heads: list[str] = field(default_factory=lambda: ["linear"])
    windows: bool = (
        False  # probe on window embeddings, score tracks by averaging window predictions
    )

    def __post_init__(self) -> None:
        require(bool(self.name), "tasks[].name", self.name, "must be set")
        require(
            bool(self.labels),
            f"tasks[{self.name}].labels",
            self.labels,
            "must name a labels CSV or folder",
        )
        require(
            len(self.fractions) > 0 and all(0 < f <= 1 for f in self.fractions),
            f"tasks[{self.name}].fractions",
            self.fractions,
            "must be values in (0, 1]",
        )
        require(len(self.seeds) > 0, f"tasks[{self.name}].seeds", self.seeds, "must not be empty")
        require(
            len(self.heads) > 0 and set(self.heads) <= set(HEADS),
            f"tasks[{self.name}].heads",
            self.heads,
            f"must be some of {list(HEADS)}",
        )


@dataclass
class SuiteConfig:
    """A probe suite (``configs/probe/*.yaml``)."""

    tasks: list[TaskConfig] = field(default_factory=list)
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    hop_seconds: float | None = None
    batch_size: int = 64
    device: str = "auto"
    random_init_seed: int = 0  # random-weight methods: draw i uses seed random_init_seed + i
    random_init_draws: int = 3  # init draws of random-weight methods (random_init, supervised)
    supervised_epochs: int = 20  # method "supervised": epochs of from-scratch training
    split_seed: int = 0

    def __post_init__(self) -> None:
        require(len(self.tasks) > 0, "tasks", self.tasks, "must list at least one task")
        require(
            len({t.name for t in self.tasks}) == len(self.tasks),
            "tasks[].name",
            [t.name for t in self.tasks],
            "must be unique",
        )
        check_methods(self.methods)
        require(
            self.random_init_draws >= 1, "random_init_draws", self.random_init_draws, "must be >= 1"
        )
        require(
            self.hop_seconds is None or self.hop_seconds > 0,
            "hop_seconds",
            self.hop_seconds,
            "must be > 0",
        )
        require(self.batch_size > 0, "batch_size", self.batch_size, "must be > 0")
        require(
            self.supervised_epochs > 0, "supervised_epochs", self.supervised_epochs, "must be > 0"
        )


def task_tracks(task: TaskConfig, labelled: Any, sample_rate: int) -> TrackSet:
    """The task's audio (its ``data``, else the labelled files) and its training split alone."""
    from audioclr.evaluate.tracks import open_tracks, tracks_of_files

    files = tracks_of_files(labelled.paths, sample_rate)
    train = labelled.indices("train")
    return TrackSet(
        tracks=open_tracks(task.data, sample_rate) if task.data else files,
        key=str(task.data or task.labels),
        train=[files[i] for i in train],
        targets=labelled.targets()[train],
        multilabel=bool(labelled.multilabel),
        n_classes=len(labelled.classes),
    )


def method_settings(cfg: SuiteConfig, task: TaskConfig, source: Source) -> MethodSettings:
    """The settings every method of ``task`` embeds with (a given folder's layer and hop)."""
    layer, hop = source.layer_and_hop(task.layer, cfg.hop_seconds)
    return MethodSettings(
        layer=layer,
        hop_seconds=hop,
        windows=task.windows,
        batch_size=cfg.batch_size,
        device=cfg.device,
        seed=cfg.random_init_seed,
        draws=cfg.random_init_draws,
        supervised_epochs=cfg.supervised_epochs,
    )


def embed_method(
    name: str, source: Source, data: TrackSet, settings: MethodSettings, out: Path
) -> list[Embedded]:
    """One method's draws for one task, cached under ``out/emb/<name>/<its cache key>/``."""
    method = get_method(name)
    folder = out / "emb" / name / method.cache_key(source, data, settings)
    return method.embed(source, data, settings, folder)


def run_task(cfg: SuiteConfig, task: TaskConfig, source: Source, out: Path) -> dict[str, Any]:
    """Probe every method and head of one task on the same splits (a list of init draws each)."""
    from audioclr.data.labels import load_labelled_set
    from audioclr.evaluate.metrics import primary_metric

    labelled = load_labelled_set(task.labels, multilabel=task.multilabel, seed=cfg.split_seed)
    data = task_tracks(task, labelled, source.sample_rate)
    settings = method_settings(cfg, task, source)
    results: dict[str, Any] = {}
    methods: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name in cfg.methods:
        method = get_method(name)
        if method.needs_encoder and source.encoder_path is None:
            skipped[name] = "needs an exported encoder (embeddings folder has no encoder_path)"
            continue
        draws = embed_method(name, source, data, settings, out)
        methods[name] = {**method.record(settings), "draws": [d.info for d in draws]}
        aligned = [align(d.emb, labelled, d.windows) for d in draws]
        if name == ENCODER:
            encoder_data = aligned[0]
        results[name] = {}
        for head in task.heads:
            probe_cfg = ProbeConfig(**{**config_to_dict(cfg.probe), "head": head})
            results[name][head] = run_probe(
                aligned if len(aligned) > 1 else aligned[0], probe_cfg, task.fractions, task.seeds
            )
    splits = {s: int(sum(1 for x in labelled.splits if x == s)) for s in ("train", "valid", "test")}
    metric = primary_metric(labelled.multilabel)  # a "tags" header declares multi-label
    leak = pretraining_leak(task, source, labelled)
    by_layer = (
        layerwise(cfg, task, source, encoder_data, metric)
        if settings.layer == "all" and ENCODER in results
        else {}
    )
    report = {
        "multilabel": labelled.multilabel,
        "metric": metric,
        "classes": list(labelled.classes),
        "tracks": splits,
        "layer": settings.layer,
        "methods": methods,
        "results": results,
        "verdict": verdicts(results, metric),
        "skipped": skipped,
        "pretraining_leak": leak,
        "layerwise": by_layer,
    }
    report["warnings"] = ([leak["warning"]] if leak["warning"] else []) + task_warnings(report)
    return report


def layerwise(
    cfg: SuiteConfig, task: TaskConfig, source: Source, data: ProbeData, metric: str
) -> dict[str, Any]:
    """Where the task's information lives: the encoder's linear probe on each block alone and on
    all blocks, at the task's largest label fraction, same seeds and splits (the block columns
    of the ``all`` vectors: ``frozen.layer_slices``). ``{}`` without an exported encoder."""
    from dataclasses import replace

    from audioclr.evaluate.frozen import layer_slices

    if source.encoder_path is None:
        return {}
    fraction = max(task.fractions)
    probe_cfg = ProbeConfig(**{**config_to_dict(cfg.probe), "head": "linear"})
    out: dict[str, Any] = {"fraction": fraction, "head": "linear", "metric": metric, "layers": {}}
    columns = {**layer_slices(source.load()), "all": slice(None)}
    for name, cols in columns.items():
        res = run_probe(replace(data, x=data.x[:, cols]), probe_cfg, [fraction], task.seeds)
        cell = res[str(float(fraction))]
        out["layers"][name] = {"dim": int(data.x[:, cols].shape[1]), **cell[metric]}
    return out


def pretraining_leak(task: TaskConfig, source: Source, labelled: Any) -> dict[str, Any]:
    """Did the encoder's pretraining cache hold this task's test files? Warns loudly if so
    (or if it cannot tell); the status goes into the report (``evaluate/leakage.py``)."""
    from audioclr.evaluate.leakage import leak_status, leak_warning

    test = [labelled.paths[i] for i in labelled.indices("test")]
    trained_on = source.load().trained_on if source.encoder_path is not None else {}
    status = leak_status(trained_on, test)
    status["warning"] = leak_warning(task.name, status)
    if status["warning"]:
        warnings.warn(status["warning"], ProbeWarning, stacklevel=2)
    return status


def run_suite(cfg: SuiteConfig, encoder_path: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Run every task of ``cfg``; writes the report under ``out_dir`` and returns it as a dict."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = Source.open(encoder_path)
    report: dict[str, Any] = {
        "encoder": str(encoder_path),
        "config": config_to_dict(cfg),
        "tasks": {},
    }
    for task in cfg.tasks:
        report["tasks"][task.name] = run_task(cfg, task, source, out)
    report["encoder_id"] = source.encoder_id
    report["files"] = {k: str(v) for k, v in write_report(report, out).items()}
    return report
