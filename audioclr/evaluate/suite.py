"""Several downstream tasks in one run: embed (cached), probe every method and head, one report.

Methods: ``encoder`` (the given exported encoder, or an embeddings folder), ``random_init`` (same
architecture, fresh weights from ``random_init_seed``), ``mfcc`` (MFCC statistics) and, opt-in,
``supervised`` (that random-init encoder trained from scratch on the training labels). Every
method is probed on the same splits and label fractions. Embeddings are cached under
``OUT/emb/<method>/<task data + settings hash>/`` so reruns reuse them (and resume if interrupted).

Example (YAML, ``configs/probe/demo.yaml``)::

    tasks:
      - {name: genre, labels: demo/labels.csv, fractions: [0.1, 1.0], seeds: [0, 1, 2]}
    methods: [encoder, random_init, mfcc]

    >>> cfg = load_config(SuiteConfig, "configs/probe/demo.yaml")
    >>> run_suite(cfg, "enc.pt", "out/")["tasks"]["genre"]["verdict"]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audioclr.config import config_to_dict, require
from audioclr.evaluate.probe import HEADS, ProbeConfig, run_probe
from audioclr.evaluate.probe_data import align
from audioclr.evaluate.report import ENCODER, verdicts, write_report
from audioclr.evaluate.suite_embed import MethodEmbedder

METHODS = (ENCODER, "random_init", "mfcc", "supervised")  # supervised: opt-in (it trains)


@dataclass
class TaskConfig:
    """One downstream task: its labels, how they are read, and what to probe."""

    name: str = ""
    labels: str = ""  # labels CSV (path,label[,split] or path,tags) or folder-per-class
    data: str | None = None  # audio to embed (folder or clip cache); default: the labelled files
    multilabel: bool = False
    fractions: list[float] = field(default_factory=lambda: [1.0])
    seeds: list[int] = field(default_factory=lambda: [0])
    layer: str = "last"
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
    methods: list[str] = field(default_factory=lambda: [ENCODER, "random_init", "mfcc"])
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    hop_seconds: float | None = None
    batch_size: int = 64
    device: str = "auto"
    random_init_seed: int = 0
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
        require(
            len(self.methods) > 0 and set(self.methods) <= set(METHODS),
            "methods",
            self.methods,
            f"must be some of {list(METHODS)}",
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


def run_task(cfg: SuiteConfig, task: TaskConfig, embedder: MethodEmbedder) -> dict[str, Any]:
    """Probe every method and head of one task on the same splits."""
    from audioclr.data.labels import load_labelled_set
    from audioclr.evaluate.metrics import primary_metric

    labelled = load_labelled_set(task.labels, multilabel=task.multilabel, seed=cfg.split_seed)
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    ids: dict[str, Any] = {}
    for method in cfg.methods:
        if method == "random_init" and embedder.encoder_path(method) is None:
            skipped[method] = "needs an exported encoder (embeddings folder has no encoder_path)"
            continue
        emb, windows = embedder(method, task, labelled)
        ids[method] = emb.meta.get("encoder_id")
        data = align(emb, labelled, windows)
        results[method] = {}
        for head in task.heads:
            probe_cfg = ProbeConfig(**{**config_to_dict(cfg.probe), "head": head})
            results[method][head] = run_probe(data, probe_cfg, task.fractions, task.seeds)
    splits = {s: int(sum(1 for x in labelled.splits if x == s)) for s in ("train", "valid", "test")}
    metric = primary_metric(labelled.multilabel)  # a "tags" header declares multi-label
    return {
        "multilabel": labelled.multilabel,
        "metric": metric,
        "classes": list(labelled.classes),
        "tracks": splits,
        "layer": embedder.settings(task)[0],
        "encoder_ids": ids,
        "results": results,
        "verdict": verdicts(results, metric),
        "skipped": skipped,
    }


def run_suite(cfg: SuiteConfig, encoder_path: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Run every task of ``cfg``; writes the report under ``out_dir`` and returns it as a dict."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    embedder = MethodEmbedder(cfg, encoder_path, out)
    report: dict[str, Any] = {
        "encoder": str(encoder_path),
        "config": config_to_dict(cfg),
        "tasks": {},
    }
    for task in cfg.tasks:
        report["tasks"][task.name] = run_task(cfg, task, embedder)
    report["encoder_id"] = (
        embedder.given.meta.get("encoder_id") if embedder.given else _encoder_id(encoder_path)
    )
    report["files"] = {k: str(v) for k, v in write_report(report, out).items()}
    return report


def _encoder_id(path: str | Path) -> str | None:
    from audioclr.ssl.export import load_encoder

    return load_encoder(path).encoder_id
