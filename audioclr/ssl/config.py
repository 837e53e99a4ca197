"""The pretraining config (``audioclr pretrain``): typed dataclasses, validated per key.

YAML files live in ``configs/pretrain/``; any key can be overridden with ``key.sub=value``.
The only required key is ``data.cache`` (a folder written by ``audioclr prepare``, or a list of
them read as one: ``data.cache=[shard0,shard1]``).

Example:
    >>> from audioclr.config import load_config
    >>> cfg = load_config(PretrainConfig, "configs/pretrain/simclr_melcnn.yaml",
    ...                   ["data.cache=cache/", "trainer.max_steps=200"])
    >>> cfg.run_dir
    PosixPath('runs/simclr_melcnn')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from audioclr.augment.config import AugmentConfig
from audioclr.config import require
from audioclr.data.groups import check_positives
from audioclr.ssl.augself import AugSelfConfig
from audioclr.ssl.objectives import (
    OBJECTIVES,
    BarlowTwinsConfig,
    BYOLConfig,
    CPCConfig,
    LooCConfig,
    SimCLRConfig,
    VICRegConfig,
)

OPTIMIZERS = ("adamw", "lars")
PRECISIONS = ("auto", "32", "bf16-mixed", "16-mixed")


@dataclass
class RunConfig:
    """Run name and folder (``dir`` empty: ``runs/<name>``)."""

    name: str = "pretrain"
    dir: str = ""

    def __post_init__(self) -> None:
        require(bool(self.name.strip()), "run.name", self.name, "must not be empty")


@dataclass
class DataConfig:
    """Where the clips come from and how pairs are cropped."""

    cache: Any = ""  # a folder written by `audioclr prepare`, or a list read as one: [a, b]
    # with a list: the share of pairs drawn from each cache, e.g. [3, 1] (3/4 from the first);
    # empty: every track once per epoch, whichever cache it is in
    cache_shares: list[float] = field(default_factory=list)
    # true: every batch comes from one cache of data.cache (per device), so a view's negatives
    # are clips of its own source (speech against speech, music against music); the caches
    # take turns at their shares, in whole batches
    one_cache_per_batch: bool = False
    # how far apart (s) two crops of a track may start; null: anywhere in the track. With a list
    # of caches, a list gives each cache its own, e.g. [null, 0.5]: near crops in the second
    max_distance_seconds: Any = None
    short: str = "pad"  # tracks shorter than the crop: "pad" or "skip"
    num_workers: int = 2
    # where BatchedAugment runs: "device" (in the training step), "workers" (DataLoader workers,
    # overlapping the step), "auto" (device on CUDA; workers on CPU when num_workers > 0)
    augment_on: str = "auto"
    # where view b comes from: "track" (another crop of the same track), "group:<column>"
    # (another track with the same value of a metadata column, e.g. group:release) or
    # "playlist" (another track sharing a playlist); metadata: audioclr metadata CACHE tracks.csv
    positives: str = "track"
    group_p: float = 0.5  # group positives: P(view b from another track of the group)

    def __post_init__(self) -> None:
        require(self.short in ("pad", "skip"), "data.short", self.short, "must be 'pad' or 'skip'")
        c = self.cache
        ok = isinstance(c, str) or (isinstance(c, list) and all(isinstance(p, str) for p in c))
        require(ok, "data.cache", c, "must be a cache folder or a list of them")
        shares = self.cache_shares
        require(
            all(isinstance(w, (int, float)) and 0 < w < float("inf") for w in shares),
            "data.cache_shares",
            shares,
            "must be positive numbers, one per cache of data.cache",
        )
        require(
            not shares or not c or (isinstance(c, list) and len(c) == len(shares)),
            "data.cache_shares",
            shares,
            f"must give one share per cache of data.cache ({c!r})",
        )
        check_positives(self.positives)
        require(0 <= self.group_p <= 1, "data.group_p", self.group_p, "must be in [0, 1]")
        require(self.num_workers >= 0, "data.num_workers", self.num_workers, "must be >= 0")
        require(
            self.augment_on in ("auto", "device", "workers"),
            "data.augment_on",
            self.augment_on,
            "must be auto, device or workers",
        )
        d = self.max_distance_seconds
        one = [d] if not isinstance(d, list) else d
        require(
            all(v is None or (isinstance(v, (int, float)) and v >= 0) for v in one),
            "data.max_distance_seconds",
            d,
            "must be >= 0 or null, or a list of those (one per cache of data.cache)",
        )
        require(
            not isinstance(d, list) or not c or (isinstance(c, list) and len(c) == len(d)),
            "data.max_distance_seconds",
            d,
            f"a list must give one value per cache of data.cache ({c!r})",
        )


@dataclass
class ModelConfig:
    """The encoder: a registry name plus its keyword arguments (widths, strides, mels...)."""

    encoder: str = "melcnn"
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    spec_augment: bool = True  # melcnn: apply augment.time_mask/freq_mask on the log-mel


@dataclass
class OptimConfig:
    """AdamW or LARS with linear warmup then cosine decay to ``lr * min_lr_ratio``."""

    name: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-6
    momentum: float = 0.9  # LARS only
    warmup_steps: int = 100
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0  # 0: no clipping

    def __post_init__(self) -> None:
        require(self.name in OPTIMIZERS, "optim.name", self.name, f"must be one of {OPTIMIZERS}")
        require(self.lr > 0, "optim.lr", self.lr, "must be > 0")
        require(self.weight_decay >= 0, "optim.weight_decay", self.weight_decay, "must be >= 0")
        require(self.warmup_steps >= 0, "optim.warmup_steps", self.warmup_steps, "must be >= 0")
        require(
            0 <= self.min_lr_ratio <= 1,
            "optim.min_lr_ratio",
            self.min_lr_ratio,
            "must be in [0, 1]",
        )
        require(self.grad_clip >= 0, "optim.grad_clip", self.grad_clip, "must be >= 0")


@dataclass
class TrainerConfig:
    """Steps, batch, devices and checkpoints (Lightning Trainer settings)."""

    max_steps: int = 1000
    max_minutes: float | None = None  # stop earlier when this wall-clock budget is spent
    batch_size: int = 48  # per device
    seed: int = 0
    accelerator: str = "auto"  # auto | cpu | gpu
    devices: str = "auto"  # auto | N | "0,1"
    num_nodes: int = 1
    strategy: str = "auto"  # auto | ddp | ddp_spawn | ...
    # auto: bf16-mixed on CUDA with bf16 and on CPUs with native bf16 (AVX512-BF16, AMX),
    # 16-mixed on older CUDA, 32 elsewhere; 32: float32 everywhere
    precision: str = "auto"
    checkpoint_every: int = 500
    log_every: int = 10
    max_bad_steps: int = 20  # consecutive non-finite losses before giving up
    progress: bool = True
    # 0: off. Else checkpoints and the exported encoder hold an exponential moving average of
    # the weights and buffers, updated after every step with this decay (Lightning's
    # EMAWeightAveraging); training itself runs on the live weights
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        require(self.max_steps >= 1, "trainer.max_steps", self.max_steps, "must be >= 1")
        m = self.max_minutes
        require(m is None or m > 0, "trainer.max_minutes", m, "must be > 0 or null")
        require(self.batch_size >= 2, "trainer.batch_size", self.batch_size, "must be >= 2")
        require(
            self.accelerator in ("auto", "cpu", "gpu", "cuda"),
            "trainer.accelerator",
            self.accelerator,
            "must be auto, cpu, gpu or cuda",
        )
        require(self.num_nodes >= 1, "trainer.num_nodes", self.num_nodes, "must be >= 1")
        require(
            self.precision in PRECISIONS,
            "trainer.precision",
            self.precision,
            f"must be one of {PRECISIONS}",
        )
        require(
            self.checkpoint_every >= 1,
            "trainer.checkpoint_every",
            self.checkpoint_every,
            "must be >= 1",
        )
        require(self.log_every >= 1, "trainer.log_every", self.log_every, "must be >= 1")
        require(
            self.max_bad_steps >= 1, "trainer.max_bad_steps", self.max_bad_steps, "must be >= 1"
        )
        require(0 <= self.ema_decay < 1, "trainer.ema_decay", self.ema_decay, "must be in [0, 1)")
        d = self.devices
        ok = d == "auto" or all(p.strip().isdigit() for p in d.split(",")) and d.strip() != ""
        require(ok, "trainer.devices", d, "must be 'auto', a count like 2, or ids like '0,1'")

    def devices_arg(self) -> int | str | list[int]:
        """``devices`` as Lightning wants it."""
        if self.devices == "auto":
            return "auto"
        if "," in self.devices:
            return [int(p) for p in self.devices.split(",") if p.strip()]
        return int(self.devices)


@dataclass
class PretrainConfig:
    """Everything ``audioclr pretrain`` needs; YAML sections are the field names.

    ``method`` names an entry of ``OBJECTIVES``; that objective's settings are the section of
    the same name (one section per registered objective).
    """

    PRESETS: ClassVar[dict[str, tuple[str, str]]] = {"augment_preset": ("augment", "augment")}

    method: str = "simclr"
    # a file of configs/augment/ (clmr, timbre, ...) that fills the augment section first;
    # "": the AugmentConfig defaults (the CLMR chain). The resolved augment section is stored.
    augment_preset: str = ""
    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    simclr: SimCLRConfig = field(default_factory=SimCLRConfig)
    cpc: CPCConfig = field(default_factory=CPCConfig)
    byol: BYOLConfig = field(default_factory=BYOLConfig)
    vicreg: VICRegConfig = field(default_factory=VICRegConfig)
    barlowtwins: BarlowTwinsConfig = field(default_factory=BarlowTwinsConfig)
    looc: LooCConfig = field(default_factory=LooCConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # auxiliary prediction of the views' augmentation differences (ssl/augself.py); weight 0: off
    augself: AugSelfConfig = field(default_factory=AugSelfConfig)

    def __post_init__(self) -> None:
        require(
            self.method in OBJECTIVES, "method", self.method, f"must be one of {sorted(OBJECTIVES)}"
        )
        if self.data.positives != "track":
            takes = OBJECTIVES[self.method].positives
            require(
                takes != "track",
                "data.positives",
                self.data.positives,
                f"needs an objective that compares the two views (method={self.method} does "
                "not); use track, or method=simclr/byol/vicreg/barlowtwins",
            )
            bank = getattr(self.objective, "memory_bank_size", 0)
            require(
                not bank,
                "data.positives",
                self.data.positives,
                f"has no multi-positive form with a memory bank (simclr.memory_bank_size={bank})",
            )
        if self.method == "looc":  # a key view per group only differs if the group can run
            for group in self.looc.groups:
                require(
                    getattr(self.augment, group).p > 0,
                    "looc.groups",
                    self.looc.groups,
                    f"names {group!r}, which never runs under the augment section "
                    f"({group}.p is 0): drop it or turn it on",
                )

    @property
    def objective(self) -> Any:
        """The config section of the chosen objective (``cfg.byol`` when ``method: byol``)."""
        return getattr(self, self.method)

    @property
    def run_dir(self) -> Path:
        """``run.dir``, or ``runs/<run.name>`` when empty (a derived value, not stored)."""
        return Path(self.run.dir) if self.run.dir else Path("runs") / self.run.name
