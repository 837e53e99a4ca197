"""Several downstream tasks in one run: embed (cached), probe every method and head, one report.

Methods come from the registry (``evaluate/methods``): ``encoder`` (the given exported encoder,
or an embeddings folder), ``random_init`` (same architecture, fresh weights, BatchNorm statistics
of the training audio; ``random_init_draws`` init draws), ``mfcc`` (MFCC statistics) and, opt-in,
``supervised`` (the random-init encoder trained from scratch on the training labels). Every
method is probed on the same splits and label fractions; a method with several init draws is
probed once per (seed, draw). Embeddings are cached under ``OUT/emb/<method>/<cache key>/`` so
reruns reuse them (and resume if interrupted). ``report.json`` records, per task, what each
method was (``methods``: display name, settings, and per draw its seed, encoder id, folder and
the training tracks its BatchNorm statistics came from). Every run's test predictions are
saved to ``OUT/scores/<task>.npz`` (``evaluate/saved_scores.py``; the task's ``scores`` entry
names the file), so that two reports can later be compared pairwise. A frozen probe is fitted
once per identical input: its result is kept in ``OUT/probes/<method>/``
(``evaluate/probe_cache.py``), which reruns and ablation recipes sharing baselines read back.

Example (YAML, ``configs/probe/demo.yaml``)::

    tasks:
      - {name: genre, labels: demo/labels.csv, fractions: [0.1, 1.0], seeds: [0, 1, 2]}
    methods: [encoder, random_init, mfcc]

    >>> cfg = load_config(SuiteConfig, "configs/probe/demo.yaml")
    >>> run_suite(cfg, "enc.pt", "out/")["tasks"]["genre"]["verdict"]
"""

from __future__ import annotations

import shlex
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audioclr.config import config_to_dict, require
from audioclr.errors import ConfigError
from audioclr.evaluate.corruptions import parse_corruption
from audioclr.evaluate.distributed import is_main, rank0_lock
from audioclr.evaluate.frozen import resolve_device
from audioclr.evaluate.methods import (
    DEFAULT_METHODS,
    ENCODER,
    Embedded,
    MethodSettings,
    Source,
    TrackSet,
    check_encoder_bn,
    check_methods,
    get_method,
)
from audioclr.evaluate.methods.random_init import hop_samples
from audioclr.evaluate.probe import run_probe
from audioclr.evaluate.probe_cache import cached_probe
from audioclr.evaluate.probe_config import ProbeConfig, check_head, is_finetune
from audioclr.evaluate.probe_data import (
    ProbeData,
    ProbeWarning,
    align,
    readable_labelled,
    unreadable_warnings,
)
from audioclr.evaluate.report import task_warnings, verdicts, write_report
from audioclr.evaluate.saved_scores import SCORES_DIR, save_scores
from audioclr.machine import machine_meta

PROBES_DIR = "probes"  # OUT/probes/<method>/<key>.json: fitted probes (probe_cache.py)


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
    heads: list[str] = field(default_factory=lambda: ["linear"])  # mlp knn finetune finetune:K
    # robustness: probes trained on clean audio, also tested on each corrupted test split
    corruptions: list[str] = field(default_factory=list)  # name:level, e.g. noise:10 mp3:32
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
        require(len(self.heads) > 0, f"tasks[{self.name}].heads", self.heads, "must not be empty")
        for head in self.heads:
            check_head(head, f"tasks[{self.name}].heads")
        for spec in self.corruptions:
            parse_corruption(spec, f"tasks[{self.name}].corruptions")


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
    max_unreadable: float = 0.05  # share of a task's test files that may be unreadable (skipped)
    corruption_seed: int = 0  # every corruption's noise / room response, per track
    # the encoder's BatchNorm statistics: pretraining (as exported) | task (re-estimated on each
    # task's training audio, no labels, as random_init's are)
    encoder_bn: str = "pretraining"

    def __post_init__(self) -> None:
        require(len(self.tasks) > 0, "tasks", self.tasks, "must list at least one task")
        check_encoder_bn(self.encoder_bn, "encoder_bn")
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
            0 <= self.max_unreadable <= 1,
            "max_unreadable",
            self.max_unreadable,
            "must be in [0, 1]",
        )
        require(
            self.supervised_epochs > 0, "supervised_epochs", self.supervised_epochs, "must be > 0"
        )


def task_tracks(task: TaskConfig, labelled: Any, sample_rate: int) -> TrackSet:
    """The task's audio (its ``data``, else the labelled files) and its training split alone."""
    from audioclr.evaluate.tracks import open_tracks, tracks_of_files

    files = tracks_of_files(labelled.paths, sample_rate)
    if labelled.folded:  # every fold trains once: BatchNorm statistics of all trainable tracks
        train = np.array([i for i, s in enumerate(labelled.splits) if not s.endswith("-test")])
        targets = None  # no labels: nothing may train on a fold set's test folds
    else:
        train = labelled.indices("train")
        targets = labelled.targets()[train]
    return TrackSet(
        tracks=open_tracks(task.data, sample_rate) if task.data else files,
        key=str(task.data or task.labels),
        train=[files[i] for i in train],
        targets=targets,
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
        encoder_bn=cfg.encoder_bn,
    )


def embed_method(
    name: str, source: Source, data: TrackSet, settings: MethodSettings, out: Path
) -> list[Embedded]:
    """One method's draws for one task, cached under ``out/emb/<its folder>/<its cache key>/``."""
    method = get_method(name)
    folder = out / "emb" / method.folder / method.cache_key(source, data, settings)
    return method.embed(source, data, settings, folder)


def run_task(cfg: SuiteConfig, task: TaskConfig, source: Source, out: Path) -> dict[str, Any]:
    """Probe every method and head of one task on the same splits (a list of init draws each):
    frozen heads on the method's embeddings, fine-tuning heads on the task's audio, each also
    scored on the corrupted test splits of ``task.corruptions``."""
    from audioclr.data.labels import load_labelled_set
    from audioclr.evaluate.aggregate import labels_saved
    from audioclr.evaluate.metrics import primary_metric
    from audioclr.evaluate.robustness import TaskAudio

    labelled = load_labelled_set(task.labels, multilabel=task.multilabel, seed=cfg.split_seed)
    # a given embeddings folder probed alone reads no audio: nothing to check
    reads_audio = source.given is None or set(cfg.methods) != {ENCODER} or bool(task.corruptions)
    unreadable: list[dict[str, str]] = []
    if reads_audio or any(is_finetune(h) for h in task.heads):
        labelled, unreadable = readable_labelled(
            labelled, source.sample_rate, out / "emb", cfg.max_unreadable, write=is_main()
        )
    if labelled.folded:
        check_folded(cfg, task)
    data = task_tracks(task, labelled, source.sample_rate)
    settings = method_settings(cfg, task, source)
    audio = TaskAudio(
        labelled, source.sample_rate, window_samples(source), task.corruptions, cfg.corruption_seed
    )
    results: dict[str, Any] = {}
    methods: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    encoder_data = None
    for name in cfg.methods:
        method = get_method(name)
        if method.needs_encoder and source.encoder_path is None:
            skipped[name] = "needs an exported encoder (embeddings folder has no encoder_path)"
            continue
        methods[name] = method.record(settings)
        results[name] = {}
        frozen = [h for h in task.heads if not is_finetune(h)]
        if frozen:
            draws = embed_method(name, source, data, settings, out)
            methods[name]["draws"] = [d.info for d in draws]
            aligned = [align(d.emb, labelled, d.windows) for d in draws]
            note = add_corrupted(aligned, name, source, data, settings, out, audio)
            if note:
                skipped[f"{name} robustness"] = note
            if name == ENCODER:
                encoder_data = aligned[0]
            for head in frozen:  # fitted once per identical probe (evaluate/probe_cache.py)
                results[name][head] = cached_probe(
                    out / PROBES_DIR / method.folder,
                    aligned if len(aligned) > 1 else aligned[0],
                    head_config(cfg, head),
                    task.fractions,
                    task.seeds,
                )
        tuned = [h for h in task.heads if is_finetune(h)]
        starts = method.finetune_starts(source, data, settings) if tuned else []
        if tuned and not starts:
            skipped[f"{name} {'/'.join(tuned)}"] = "no encoder weights to fine-tune"
        if starts:
            labels = align_labels(labelled)
            hop = hop_samples(starts[0], settings.hop_seconds)
            device = str(resolve_device(cfg.device))
            tuned_data = [audio.finetune_data(labels, st, hop, device) for st in starts]
            for head in tuned:
                results[name][head] = run_probe(
                    tuned_data if len(tuned_data) > 1 else tuned_data[0],
                    head_config(cfg, head, device),
                    task.fractions,
                    task.seeds,
                )
    splits = split_counts(labelled.splits)
    if labelled.groups is not None:  # intervals resample these whole
        splits["groups"] = len(set(labelled.groups))
    metric = primary_metric(labelled.multilabel)  # a "tags" header declares multi-label
    leak = pretraining_leak(task, source, labelled)
    by_layer = (
        layerwise(
            cfg,
            task,
            source,
            encoder_data,
            metric,
            out / PROBES_DIR / get_method(ENCODER).folder,
        )
        if settings.layer == "all" and encoder_data is not None
        else {}
    )
    report = {
        "multilabel": labelled.multilabel,
        "metric": metric,
        "classes": list(labelled.classes),
        "tracks": splits,
        "layer": settings.layer,
        "corruptions": list(task.corruptions),
        "methods": methods,
        "results": results,
        "verdict": verdicts(results, metric),
        "labels_saved": labels_saved(results, metric, cfg.probe.bootstrap),
        "skipped": skipped,
        "pretraining_leak": leak,
        "layerwise": by_layer,
    }
    report["warnings"] = ([leak["warning"]] if leak["warning"] else []) + task_warnings(report)
    report["unreadable"] = unreadable
    report["warnings"] += unreadable_warnings(unreadable)
    return report


def check_folded(cfg: SuiteConfig, task: TaskConfig) -> None:
    """A labelled set with folds is cross-validated by the frozen heads only: refuse what would
    train on, or corrupt, one fixed test split (naming the key)."""
    bad = [
        (f"tasks[{task.name}].heads", h, "fine-tuning") for h in task.heads if is_finetune(h)
    ] + [("methods", m, "it trains on labels") for m in cfg.methods if m == "supervised"]
    if task.corruptions:
        bad.append((f"tasks[{task.name}].corruptions", task.corruptions[0], "robustness"))
    if bad:
        key, value, what = bad[0]
        raise ConfigError(
            f"{key}: {value!r} ({what}) needs train/valid/test splits, but {task.labels} names "
            "folds (cross-validation)",
            hint="drop it for this task, or give a labels CSV with train/valid/test splits",
        )


def split_counts(splits: list[str]) -> dict[str, int]:
    """Tracks per split; for a fold set: folds, trainable tracks, test-only tracks, tested ones."""
    from audioclr.evaluate.folds import fold_ids

    folds = fold_ids(splits)
    if not folds:
        return {s: int(sum(1 for x in splits if x == s)) for s in ("train", "valid", "test")}
    only = {s for s in splits if s.endswith("-test")}
    n_only = sum(1 for s in splits if s in only)
    stood_in = {s[: -len("-test")] for s in only}  # folds tested on their stand-ins
    tested = n_only + sum(1 for s in splits if not s.endswith("-test") and s not in stood_in)
    plain = len(splits) - n_only
    return {"folds": len(folds), "trainable": plain, "test_only": n_only, "tested": tested}


def head_config(cfg: SuiteConfig, head: str, device: str | None = None) -> ProbeConfig:
    """The suite's ``probe`` settings for ``head`` (fine-tuning heads on the suite's device)."""
    extra = {"device": device} if device else {}
    return ProbeConfig(**{**config_to_dict(cfg.probe), "head": head, **extra})


def window_samples(source: Source) -> int:
    """The encoder's window in samples (a given folder's ``window_samples``; MFCC-only: 1 s)."""
    if source.encoder_path is not None:
        return int(source.load().input_samples)
    meta = source.given.meta if source.given is not None else {}
    return int(meta.get("window_samples") or source.sample_rate)


def align_labels(labelled: Any) -> ProbeData:
    """The labelled set's targets, splits and classes as a ``ProbeData`` of one row per track."""
    n = len(labelled.paths)
    return ProbeData(
        np.zeros((n, 0), np.float32),
        np.arange(n),
        labelled.targets(),
        np.asarray(labelled.splits),
        list(labelled.classes),
        bool(labelled.multilabel),
        groups=None if labelled.groups is None else np.asarray(labelled.groups, dtype=str),
    )


def add_corrupted(
    aligned: list[ProbeData],
    name: str,
    source: Source,
    data: TrackSet,
    settings: MethodSettings,
    out: Path,
    audio: Any,
) -> str:
    """Embed each corrupted test split with method ``name`` and attach it to every draw's
    ``corrupted``; returns why it could not ("" when done)."""
    from audioclr.evaluate.robustness import corrupted_rows

    if not audio.corruptions:
        return ""
    if name == ENCODER and source.given is not None:
        return "an embeddings folder cannot be re-embedded on corrupted audio; pass ENC.pt"
    for spec in audio.corruptions:
        draws = embed_method(name, source, audio.corrupted_set(spec, data), settings, out)
        for clean, draw in zip(aligned, draws, strict=True):
            clean.corrupted[spec] = corrupted_rows(draw, audio.test, clean)
    return ""


def layerwise(
    cfg: SuiteConfig,
    task: TaskConfig,
    source: Source,
    data: ProbeData,
    metric: str,
    probes: Path | None = None,
) -> dict[str, Any]:
    """Where the task's information lives: the encoder's linear probe on each block alone and on
    all blocks, at the task's largest label fraction, same seeds and splits (the block columns
    of the ``all`` vectors: ``frozen.layer_slices``). ``{}`` without an exported encoder.
    ``probes``: where fitted probes are kept (``probe_cache.py``; None: always fitted)."""
    from dataclasses import replace

    from audioclr.evaluate.frozen import layer_slices

    if source.encoder_path is None:
        return {}
    fraction = max(task.fractions)
    probe_cfg = head_config(cfg, "linear")
    out: dict[str, Any] = {"fraction": fraction, "head": "linear", "metric": metric, "layers": {}}
    columns = {**layer_slices(source.load()), "all": slice(None)}
    for name, cols in columns.items():
        block = replace(data, x=data.x[:, cols], corrupted={})  # clean audio only
        if probes is None:
            res = run_probe(block, probe_cfg, [fraction], task.seeds)
        else:
            res = cached_probe(probes, block, probe_cfg, [fraction], task.seeds)
        cell = res[str(float(fraction))]
        out["layers"][name] = {"dim": int(data.x[:, cols].shape[1]), **cell[metric]}
    return out


def pretraining_leak(task: TaskConfig, source: Source, labelled: Any) -> dict[str, Any]:
    """Did the encoder's pretraining cache hold this task's test files? Warns loudly if so
    (or if it cannot tell); the status goes into the report (``evaluate/leakage.py``)."""
    from audioclr.evaluate.leakage import leak_status, leak_warning

    # a fold set tests every fold in turn: all of its files are test files
    tested = range(len(labelled.paths)) if labelled.folded else labelled.indices("test")
    test = [labelled.paths[i] for i in tested]
    trained_on = source.load().trained_on if source.encoder_path is not None else {}
    status = leak_status(trained_on, test)
    status["warning"] = leak_warning(task.name, status)
    if status["warning"]:
        warnings.warn(status["warning"], ProbeWarning, stacklevel=2)
    return status


def run_suite(cfg: SuiteConfig, encoder_path: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Run every task of ``cfg``; writes the report under ``out_dir`` and returns it as a dict
    (with the HEAR-style ``aggregate`` over tasks, ``evaluate/aggregate.py``)."""
    from audioclr.evaluate.aggregate import aggregate

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = Source.open(encoder_path)
    report: dict[str, Any] = {
        "meta": machine_meta(shlex.join(["audioclr", *sys.argv[1:]])),
        "encoder": str(encoder_path),
        "config": config_to_dict(cfg),
        "tasks": {},
    }
    with rank0_lock(out, "probe"):  # one writer per output folder; under torchrun rank 0 writes
        for task in cfg.tasks:
            report["tasks"][task.name] = t = run_task(cfg, task, source, out)
            if is_main():  # every run's test predictions, for paired comparisons later
                t["scores"] = str(save_scores(t["results"], out / SCORES_DIR / f"{task.name}.npz"))
        report["encoder_id"] = source.encoder_id
        report["aggregate"] = aggregate(report["tasks"])
        if is_main():
            report["files"] = {k: str(v) for k, v in write_report(report, out).items()}
    return report
