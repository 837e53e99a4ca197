"""The benchmark suite config (``benchmarks/suite.yaml``): typed dataclasses, validated per key.

Paths of data sets are relative to the data root: ``data_root``, else ``$AUDIOCLR_DATA``, else
``~/.cache/audioclr-data`` (where ``benchmarks/datasets/build_all.py`` writes them).

A suite YAML with an ``ablation`` section (``benchmarks/ablation.yaml``) is an
``AblationConfig``: the same keys plus named recipes (``audioclr pretrain`` overrides), the
probe layers to evaluate each recipe's encoder at and, optionally, the pool each recipe
pretrains on (``ablation.pools``, ``benchmarks/cross_domain.yaml``); ``load_benchmark_config``
picks the class.

Example:
    >>> cfg = load_config(BenchmarkConfig, "benchmarks/suite.yaml", ["pretrain.minutes=1"])
    >>> check_datasets(cfg)["pool"]
    PosixPath('/root/.cache/audioclr-data/music_pool/audio/pretrain')
    >>> abl = load_benchmark_config("benchmarks/ablation.yaml", ["ablation.layers=[last]"])
    >>> list(abl.ablation.recipes), abl.ablation.layers
    (['clmr', 'timbre', 'timbre_byol'], ['last'])
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from audioclr.config import load_config, require
from audioclr.errors import AudioReadError, ConfigError
from audioclr.evaluate.methods import DEFAULT_METHODS, check_encoder_bn, check_methods
from audioclr.evaluate.probe_config import HEADS, ProbeConfig

DEFAULT_DATA = "~/.cache/audioclr-data"
BUILD_HINT = (
    "run: .venv/bin/python benchmarks/datasets/build_all.py (or set AUDIOCLR_DATA / data_root=...)"
)


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
        require(
            bool(self.labels),
            f"probe.tasks[{self.name}].labels",
            self.labels,
            "must name a labels CSV relative to the data root",
        )
        require(
            len(self.heads) > 0 and set(self.heads) <= set(HEADS),
            f"probe.tasks[{self.name}].heads",
            self.heads,
            f"must be some of {list(HEADS)}",
        )


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
    # the encoder's BatchNorm statistics in probes and retrieval: pretraining (as exported) |
    # task (re-estimated on each task's training audio, no labels, as random-init's are)
    encoder_bn: str = "pretraining"

    def __post_init__(self) -> None:
        check_encoder_bn(self.encoder_bn, "probe.encoder_bn")
        require(
            all(0 < f <= 1 for f in self.fractions) and self.fractions,
            "probe.fractions",
            self.fractions,
            "must be values in (0, 1]",
        )
        require(len(self.seeds) > 0, "probe.seeds", self.seeds, "must not be empty")
        check_methods(self.methods, "probe.methods")
        require(
            len({t.name for t in self.tasks}) == len(self.tasks),
            "probe.tasks[].name",
            [t.name for t in self.tasks],
            "must be unique",
        )


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


def pool_slug(folder: str) -> str:
    """The folder name of a pool's clip cache: ``speech_pool/audio`` -> ``speech_pool-audio``."""
    return "-".join(p for p in re.split(r"[^A-Za-z0-9_.]+", folder) if p)


@dataclass
class BenchmarkConfig:
    """The whole suite: data, pretraining, probes, retrieval."""

    data_root: str = ""  # empty: $AUDIOCLR_DATA, else ~/.cache/audioclr-data
    pool: str = "music_pool/audio/pretrain"  # unlabelled audio to pretrain on
    # more unlabelled folders (under the data root) pretrained on together with ``pool``: each
    # gets its own clip cache (OUT/pools/<slug>/cache), the caches are read as one
    extra_pools: list[str] = field(default_factory=list)
    # a tracks.csv (path,<column>,...) attached to the pool's cache after prepare (audioclr
    # metadata), for recipes with data.positives=group:<column>; "": none
    metadata: str = ""
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
        require(
            self.random_init_draws >= 1, "random_init_draws", self.random_init_draws, "must be >= 1"
        )
        slugs = [pool_slug(f) for f in [self.pool, *self.extra_pools]]
        require(
            all(slugs) and len(set(slugs)) == len(slugs),
            "extra_pools",
            self.extra_pools,
            "must list folders under the data root, each once and none equal to pool",
        )

    @property
    def pools(self) -> list[str]:
        """Every folder pretrained on: ``pool`` first, then ``extra_pools`` (derived)."""
        return [self.pool, *self.extra_pools]

    @property
    def root(self) -> Path:
        """The data root actually used (a derived value, not stored)."""
        raw = self.data_root or os.environ.get("AUDIOCLR_DATA") or DEFAULT_DATA
        return Path(raw).expanduser().resolve()


NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # recipe and layer names are folder names
RESERVED = ("cache", "shared", "pools")  # folders of the ablation's output that are not recipes
RUNNER_KEYS = ("data.cache", "run.dir", "trainer.max_minutes", "trainer.max_steps")


@dataclass
class AblationSection:
    """Recipes (name -> ``audioclr pretrain`` overrides added to ``pretrain.overrides``), the
    probe layers every recipe's encoder is evaluated at (no re-pretraining per layer), the
    pools of recipes that do not pretrain on the top-level ``pool`` (recipe -> folders under
    the data root; several folders are read as one: ``data.cache=[a, b]``) and the reference
    recipe every other one is compared with on the same test tracks and label subsets."""

    recipes: dict[str, list[str]] = field(default_factory=dict)
    layers: list[str] = field(default_factory=lambda: ["all", "last"])
    pools: dict[str, list[str]] = field(default_factory=dict)
    reference: str = ""  # the recipe the others are compared with, paired (empty: the first)

    @property
    def reference_recipe(self) -> str:
        """``reference``, or the first recipe when it is empty (derived)."""
        return self.reference or next(iter(self.recipes), "")

    def __post_init__(self) -> None:
        for name, folders in self.pools.items():
            require(
                name in self.recipes,
                f"ablation.pools.{name}",
                name,
                f"must name a recipe of ablation.recipes {list(self.recipes)}",
            )
            require(
                len(folders) > 0
                and all(pool_slug(f) for f in folders)
                and len({pool_slug(f) for f in folders}) == len(folders),
                f"ablation.pools.{name}",
                folders,
                "must list distinct pool folders, relative to the data root",
            )
        folders = {Path(f).as_posix() for fs in self.pools.values() for f in fs}
        require(
            len({pool_slug(f) for f in folders}) == len(folders),
            "ablation.pools",
            sorted(folders),
            "must not hold two folders whose names differ only in punctuation (one cache each)",
        )
        for name, overrides in self.recipes.items():
            require(
                bool(NAME.match(name)) and name not in RESERVED,
                f"ablation.recipes.{name}",
                name,
                f"must be a folder name (letters, digits, _.-), not one of {RESERVED}",
            )
            budget = [o for o in overrides if o.split("=", 1)[0].strip() in RUNNER_KEYS]
            require(
                not budget,
                f"ablation.recipes.{name}",
                budget,
                f"must not set {RUNNER_KEYS} (the runner sets them; the budget is shared)",
            )
        require(
            not self.reference or self.reference in self.recipes,
            "ablation.reference",
            self.reference,
            f"must name a recipe of ablation.recipes {list(self.recipes)}, or be empty (the first)",
        )
        require(
            len(self.layers) > 0
            and len(set(self.layers)) == len(self.layers)
            and all(NAME.match(x) for x in self.layers),
            "ablation.layers",
            self.layers,
            "must be distinct layer names ('all', 'last' or a block name)",
        )


@dataclass
class AblationConfig(BenchmarkConfig):
    """The suite run once per recipe at a shared budget (``benchmarks/ablation.yaml``)."""

    ablation: AblationSection = field(default_factory=AblationSection)

    def __post_init__(self) -> None:
        super().__post_init__()
        recipes = self.ablation.recipes
        require(len(recipes) > 0, "ablation.recipes", recipes, "must name a recipe")
        for name in self.ablation.recipes:
            recipe_pretrain_config(self, name)


def recipe_pretrain_config(cfg: AblationConfig, name: str) -> object:
    """The ``PretrainConfig`` of recipe ``name`` without its paths (validates its overrides:
    ``ConfigError`` naming ``ablation.recipes.<name>``)."""
    from audioclr.config import resolve_config_path
    from audioclr.ssl.config import PretrainConfig

    overrides = cfg.ablation.recipes[name]
    try:
        return load_config(
            PretrainConfig,
            resolve_config_path(cfg.pretrain.config, "pretrain"),
            [*cfg.pretrain.overrides, *overrides],
        )
    except ConfigError as exc:
        raise ConfigError(
            f"config key 'ablation.recipes.{name}' is not a valid pretraining "
            f"recipe {overrides!r}: {exc}",
            hint=f"fix 'ablation.recipes.{name}': dotted audioclr pretrain "
            "overrides, e.g. augment.pitch.p=0 or method=byol",
        ) from exc


def load_benchmark_config(
    path: str | Path, overrides: Sequence[str] = ()
) -> BenchmarkConfig | AblationConfig:
    """The suite at ``path``: an ``AblationConfig`` when the YAML has an ``ablation`` section
    (or an override sets ``ablation.*``), else a ``BenchmarkConfig``."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        data = None  # load_config reports it
    ablation = (isinstance(data, dict) and "ablation" in data) or any(
        o.strip().startswith("ablation.") for o in overrides
    )
    return load_config(AblationConfig if ablation else BenchmarkConfig, path, overrides)


def check_datasets(cfg: BenchmarkConfig) -> dict[str, Path]:
    """Absolute paths of the pool, each task's labels and the retrieval labels; a clear error if
    any is missing (``AudioReadError`` naming the data set and how to build it)."""
    root = cfg.root
    needed = {
        "pool": cfg.pool,
        **{f"extra_pools[{i}]": folder for i, folder in enumerate(cfg.extra_pools)},
        **({"metadata": cfg.metadata} if cfg.metadata else {}),
        "retrieval": cfg.retrieval.labels,
        **(
            {"retrieval_release": cfg.retrieval.release_labels}
            if cfg.retrieval.release_labels
            else {}
        ),
        **{f"task:{t.name}": t.labels for t in cfg.probe.tasks},
        **(
            {
                f"ablation.pools.{name}[{i}]": folder
                for name, folders in cfg.ablation.pools.items()
                for i, folder in enumerate(folders)
            }
            if isinstance(cfg, AblationConfig)
            else {}
        ),
    }
    paths = {key: root / rel for key, rel in needed.items()}
    missing = [f"{key} ({p})" for key, p in paths.items() if not p.exists()]
    if missing:
        raise AudioReadError(
            f"benchmark data set(s) missing under {root}: {', '.join(missing)}", hint=BUILD_HINT
        )
    return paths
