"""The benchmark suite config (``benchmarks/suite.yaml``): typed dataclasses, validated per key.

Paths of data sets are relative to the data root: ``data_root``, else ``$AUDIOCLR_DATA``, else
``~/.cache/audioclr-data`` (where ``benchmarks/datasets/build_all.py`` writes them).

Example:
    >>> cfg = load_config(BenchmarkConfig, "benchmarks/suite.yaml", ["pretrain.minutes=1"])
    >>> check_datasets(cfg)["pool"]
    PosixPath('/root/.cache/audioclr-data/music_pool/audio/pretrain')
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from audioclr.config import require
from audioclr.errors import AudioReadError
from audioclr.evaluate.methods import DEFAULT_METHODS, check_methods
from audioclr.evaluate.probe import HEADS, ProbeConfig

DEFAULT_DATA = "~/.cache/audioclr-data"
BUILD_HINT = ("run: .venv/bin/python benchmarks/datasets/build_all.py "
              "(or set AUDIOCLR_DATA / data_root=...)")


@dataclass
class PretrainSection:
    """Pretraining on the music pool: a ``configs/pretrain`` name, a time budget, overrides."""

    config: str = "simclr_melcnn"
    minutes: float = 20.0  # trainer.max_minutes
    max_steps: int = 1000  # trainer.max_steps: the LR schedule (the budget may stop earlier)
    overrides: list[str] = field(default_factory=list)  # e.g. trainer.batch_size=32

    def __post_init__(self) -> None:
        require(self.minutes > 0, "pretrain.minutes", self.minutes, "must be > 0")
        require(self.max_steps >= 1, "pretrain.max_steps", self.max_steps, "must be >= 1")


@dataclass
class BenchTask:
    """One labelled task: a labels CSV under the data root."""

    name: str = ""
    labels: str = ""
    heads: list[str] = field(default_factory=lambda: ["linear"])

    def __post_init__(self) -> None:
        require(bool(self.name), "probe.tasks[].name", self.name, "must be set")
        require(bool(self.labels), f"probe.tasks[{self.name}].labels", self.labels,
                "must name a labels CSV relative to the data root")
        require(len(self.heads) > 0 and set(self.heads) <= set(HEADS),
                f"probe.tasks[{self.name}].heads", self.heads, f"must be some of {list(HEADS)}")


@dataclass
class ProbeSection:
    """Linear probes on every task, every label fraction and seed, for every method."""

    tasks: list[BenchTask] = field(default_factory=list)
    fractions: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    hop_seconds: float | None = None
    batch_size: int = 64

    def __post_init__(self) -> None:
        require(all(0 < f <= 1 for f in self.fractions) and self.fractions, "probe.fractions",
                self.fractions, "must be values in (0, 1]")
        require(len(self.seeds) > 0, "probe.seeds", self.seeds, "must not be empty")
        check_methods(self.methods, "probe.methods")
        require(len({t.name for t in self.tasks}) == len(self.tasks), "probe.tasks[].name",
                [t.name for t in self.tasks], "must be unique")


@dataclass
class RetrievalSection:
    """Same-track (and same-release) retrieval on held-out segments; exact (Flat) cosine index."""

    labels: str = "music_pool/segments_labels.csv"
    # same-release retrieval on the same segments (relevant: another track of the same
    # release); "" skips it
    release_labels: str = "music_pool/segments_release_labels.csv"
    k: list[int] = field(default_factory=lambda: [1, 5, 10])
    factory: str = "Flat"

    def __post_init__(self) -> None:
        require(len(self.k) > 0 and min(self.k) >= 1, "retrieval.k", self.k, "must be values >= 1")


@dataclass
class BenchmarkConfig:
    """The whole suite: data, pretraining, probes, retrieval."""

    data_root: str = ""  # empty: $AUDIOCLR_DATA, else ~/.cache/audioclr-data
    pool: str = "music_pool/audio/pretrain"  # unlabelled audio to pretrain on
    sample_rate: int = 22050
    device: str = "auto"
    random_init_seed: int = 0  # random-init draw i uses seed random_init_seed + i
    random_init_draws: int = 3  # init draws of random-init (probes and retrieval)
    pretrain: PretrainSection = field(default_factory=PretrainSection)
    probe: ProbeSection = field(default_factory=ProbeSection)
    retrieval: RetrievalSection = field(default_factory=RetrievalSection)

    def __post_init__(self) -> None:
        require(self.sample_rate > 0, "sample_rate", self.sample_rate, "must be > 0")
        require(len(self.probe.tasks) > 0, "probe.tasks", self.probe.tasks, "must list a task")
        require(self.random_init_draws >= 1, "random_init_draws", self.random_init_draws,
                "must be >= 1")

    @property
    def root(self) -> Path:
        """The data root actually used (a derived value, not stored)."""
        raw = self.data_root or os.environ.get("AUDIOCLR_DATA") or DEFAULT_DATA
        return Path(raw).expanduser().resolve()


def check_datasets(cfg: BenchmarkConfig) -> dict[str, Path]:
    """Absolute paths of the pool, each task's labels and the retrieval labels; a clear error if
    any is missing (``AudioReadError`` naming the data set and how to build it)."""
    root = cfg.root
    needed = {"pool": cfg.pool, "retrieval": cfg.retrieval.labels,
              **({"retrieval_release": cfg.retrieval.release_labels}
                 if cfg.retrieval.release_labels else {}),
              **{f"task:{t.name}": t.labels for t in cfg.probe.tasks}}
    paths = {key: root / rel for key, rel in needed.items()}
    missing = [f"{key} ({p})" for key, p in paths.items() if not p.exists()]
    if missing:
        raise AudioReadError(f"benchmark data set(s) missing under {root}: {', '.join(missing)}",
                             hint=BUILD_HINT)
    return paths
