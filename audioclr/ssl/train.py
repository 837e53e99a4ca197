"""``pretrain``: build the run (folder, data, module, Trainer) from a config and fit it.

The run folder (``run.dir``, default ``runs/<run.name>``) holds ``config.yaml`` (the resolved
config), ``tb/`` (TensorBoard logs) and ``checkpoints/`` (``last.ckpt`` and ``step-N.ckpt``).
``resume=True`` continues from ``checkpoints/last.ckpt``: same step, optimizer state, data
and augmentation draws (both are functions of the step), so the next loss equals an
uninterrupted run's.

Example:
    >>> cfg = load_config(PretrainConfig, resolve_config_path("simclr_melcnn", "pretrain"),
    ...                   ["data.cache=cache/"])
    >>> run_dir = pretrain(cfg)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EMAWeightAveraging
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_info

from audioclr.augment.batched import BatchedAugment
from audioclr.config import config_to_dict, save_config
from audioclr.errors import CheckpointError, ConfigError
from audioclr.ssl.callbacks import StepCheckpoint, TimeBudgetSchedule
from audioclr.ssl.checkpoint import LAST, AtomicCheckpointIO, checkpoint_dir, read_run_checkpoint
from audioclr.ssl.config import PretrainConfig
from audioclr.ssl.data import AugmentCollate, StepBatchSampler, step_loader
from audioclr.ssl.module import PretrainModule


class PairData(pl.LightningDataModule):
    """Step-indexed batches of ``(view_a, view_b, idx)`` for this rank (see ``ssl/data.py``)."""

    def __init__(self, dataset: Any, cfg: PretrainConfig) -> None:
        super().__init__()
        self.dataset, self.cfg = dataset, cfg

    def train_dataloader(self) -> Any:
        t = self.trainer
        d = self.cfg.data
        pools = cache_pools(self.dataset) if d.cache_shares or d.one_cache_per_batch else None
        if d.one_cache_per_batch:
            check_pools_fill_a_batch(pools, self.cfg.trainer.batch_size)
        sampler = StepBatchSampler(
            len(self.dataset),
            self.cfg.trainer.batch_size,
            self.cfg.trainer.seed,
            start_step=t.global_step,
            total_steps=self.cfg.trainer.max_steps,
            rank=t.global_rank,
            world_size=t.world_size,
            pools=pools,
            shares=d.cache_shares,
            one_pool_per_batch=d.one_cache_per_batch,
        )
        if pools is not None:
            parts = zip(sampler.counts, pools, strict=True)
            rank_zero_info(
                f"pairs per epoch from each cache of data.cache (data.cache_shares={d.cache_shares}"
                + (", one cache per batch" if d.one_cache_per_batch else "")
                + "): "
                + ", ".join(f"{k} of {len(p)} tracks" for k, p in parts)
            )
        check_enough_tracks(sampler.n, self.cfg.trainer.batch_size, t.world_size)
        on_cuda = isinstance(t.accelerator, pl.accelerators.CUDAAccelerator)
        augment = None
        if augment_in_workers(self.cfg, on_cuda):  # a CPU copy for the workers
            augment = BatchedAugment(self.cfg.augment, t.lightning_module.sample_rate)
        collate = AugmentCollate(
            augment,
            self.cfg.trainer.seed,
            t.global_rank,
            params=self.cfg.augself.weight > 0,
            groups=t.lightning_module.objective.groups,
            group_ids=self.cfg.data.positives != "track",
        )
        return step_loader(
            self.dataset, sampler, self.cfg.data.num_workers, pin_memory=on_cuda, collate=collate
        )


def cache_pools(dataset: Any) -> list[list[int]]:
    """The dataset's items of each cache of ``data.cache`` (a list of caches), in list order;
    ``ConfigError`` naming ``data.cache_shares`` when a cache gives no usable track."""
    cache = dataset.cache
    n = len(getattr(cache, "caches", [cache]))
    member = getattr(cache, "member", lambda i: 0)
    pools: list[list[int]] = [[] for _ in range(n)]
    for item, track in enumerate(dataset.indices):
        pools[member(track)].append(item)
    empty = [k for k, p in enumerate(pools) if not p]
    if empty:
        raise ConfigError(
            f"config key 'data.cache_shares' gives a share to cache {empty[0]} of data.cache, "
            "but it has no usable track",
            hint="drop that cache or its share, or use data.short=pad",
        )
    return pools


def check_pools_fill_a_batch(pools: list[list[int]], batch_size: int) -> None:
    """``ConfigError`` naming ``data.one_cache_per_batch`` when a cache has fewer usable tracks
    than one batch (its batches would hold a track twice)."""
    short = [k for k, p in enumerate(pools) if len(p) < batch_size]
    if short:
        k = short[0]
        raise ConfigError(
            f"config key 'data.one_cache_per_batch' needs a batch of trainer.batch_size="
            f"{batch_size} tracks from each cache, but cache {k} of data.cache has "
            f"{len(pools[k])} usable tracks",
            hint=f"set trainer.batch_size={max(2, len(pools[k]))} or less, or "
            "data.one_cache_per_batch=false",
        )


def check_enough_tracks(tracks: int, batch_size: int, world_size: int = 1) -> None:
    """``ConfigError`` when one step's batches over all ranks need more tracks than there are:
    a track would then be in a batch twice, its own crops pushed apart as negatives."""
    if tracks < batch_size * world_size:
        raise ConfigError(
            f"config key 'trainer.batch_size' is {batch_size} on {world_size} device(s), but the "
            f"clip cache has only {tracks} usable tracks: a track would meet itself as a negative",
            hint=f"set trainer.batch_size={max(2, tracks // world_size)} or less, or add audio",
        )


def augment_in_workers(cfg: PretrainConfig, on_cuda: bool) -> bool:
    """Resolve ``data.augment_on``: auto = device on CUDA, workers on CPU with workers > 0."""
    where = cfg.data.augment_on
    if where == "auto":
        return not on_cuda and cfg.data.num_workers > 0
    return where == "workers"


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def pair_dataset(cfg: PretrainConfig, crop_samples: int, sample_rate: int) -> Any:
    """``PairDataset`` over the clip cache at ``data.cache`` (rate checked against the encoder),
    with the groups of ``data.positives`` (how many tracks fall back is logged)."""
    from audioclr.data.cache import open_cache
    from audioclr.data.groups import load_groups
    from audioclr.data.pairs import PairDataset

    cache = open_cache(cfg.data.cache)
    if cache.sample_rate != sample_rate:
        from audioclr.errors import SampleRateMismatch

        raise SampleRateMismatch(
            f"clip cache {cfg.data.cache} is at {cache.sample_rate} Hz but "
            f"the encoder expects {sample_rate} Hz"
        )
    dist = cfg.data.max_distance_seconds
    samples = [None if d is None else round(d * sample_rate) for d in _as_list(dist)]
    dataset = PairDataset(
        cache,
        crop_samples,
        samples if isinstance(dist, list) else samples[0],
        short=cfg.data.short,
        seed=cfg.trainer.seed,
        groups=load_groups(cache, cfg.data.positives),
        group_p=cfg.data.group_p,
    )
    if dataset.members is not None:
        rank_zero_info(
            f"positives {cfg.data.positives} (group_p={cfg.data.group_p}): "
            f"{sum(len(m) > 1 for m in dataset.members)} groups of 2+ tracks over "
            f"{len(dataset)} tracks; {dataset.alone} tracks alone in their group and "
            f"{dataset.ungrouped} in no group fall back to crops of themselves"
        )
    return dataset


def cache_sample_rate(cfg: PretrainConfig) -> int:
    """The sample rate of the clip cache (``data.cache`` is required)."""
    if not cfg.data.cache:
        raise ConfigError(
            "config key 'data.cache' is required",
            hint="pass data.cache=PATH (a folder written by 'audioclr prepare')",
        )
    from audioclr.data.cache import open_cache

    return open_cache(cfg.data.cache).sample_rate


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX): only there does
    ``bf16-mixed`` run faster than float32 (elsewhere it is emulated, and slower)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def precision_for(cfg: PretrainConfig) -> str:
    """``auto``: the fastest precision computed natively: bf16-mixed on CUDA with bf16 and on a
    CPU with native bfloat16 (:func:`cpu_has_native_bf16`), 16-mixed on older CUDA, else 32-true.
    On a 2-core Intel Xeon with AMX, bf16-mixed trains 1.8x the steps of float32 in the suite's
    30 minutes and no row of the suite is worse (benchmarks/results/precision.md).

    An explicit ``bf16-mixed`` on a CPU without native bfloat16 (emulated: slower than float32)
    or ``16-mixed`` without CUDA raises ``ConfigError`` naming ``trainer.precision``.
    """
    p = cfg.trainer.precision
    cuda = torch.cuda.is_available() and cfg.trainer.accelerator != "cpu"
    if p == "auto":
        if not cuda:
            return "bf16-mixed" if cpu_has_native_bf16() else "32-true"
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if p == "bf16-mixed" and not cuda and not cpu_has_native_bf16():
        raise ConfigError(
            "config key 'trainer.precision' is 'bf16-mixed', but this CPU has no native "
            "bfloat16 (AVX512-BF16 or AMX): emulated, it runs slower than float32",
            hint="use trainer.precision=auto or 32 on this CPU",
        )
    if p == "16-mixed" and not cuda:
        raise ConfigError(
            "config key 'trainer.precision' is '16-mixed', but float16 mixed precision runs on "
            "CUDA only",
            hint="use trainer.precision=auto, 32 or (on a CPU with AVX512-BF16 or AMX) bf16-mixed",
        )
    return "32-true" if p == "32" else p


def arch_sections(cfg: PretrainConfig) -> tuple[str, ...]:
    """Config sections that fix the weights' shapes: ``method``, ``model``, the chosen
    objective's own section (named like the method, e.g. ``byol``) and ``augself`` (whose
    head exists only with ``augself.weight > 0``)."""
    return ("method", "model", cfg.method, "augself")


def check_resume(cfg: PretrainConfig, run_dir: Path) -> Path:
    """The checkpoint to resume from; ``ConfigError`` if the architecture config changed."""
    last = checkpoint_dir(run_dir) / LAST
    if not last.is_file():
        raise CheckpointError(f"--resume: no checkpoint at {last}", hint="start without --resume")
    stored = read_run_checkpoint(last)[0]["config"]
    now, default = config_to_dict(cfg), config_to_dict(PretrainConfig())
    for key in arch_sections(cfg):  # a section a run predates reads as its default
        if stored.get(key, default[key]) != now[key]:
            raise ConfigError(
                f"--resume: config key '{key}' differs from the run in {run_dir}",
                hint="resume with the run's config.yaml, or start a new run.dir",
            )
    return last


def build_trainer(
    cfg: PretrainConfig, run_dir: Path, callbacks: Sequence[pl.Callback]
) -> pl.Trainer:
    """The Lightning Trainer of a run (devices, precision, logs, atomic checkpoints)."""
    t = cfg.trainer
    return pl.Trainer(
        accelerator="gpu" if t.accelerator == "cuda" else t.accelerator,
        devices=t.devices_arg(),
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=precision_for(cfg),
        max_steps=t.max_steps,
        max_time={"minutes": t.max_minutes} if t.max_minutes else None,
        logger=TensorBoardLogger(str(run_dir), name="", version="tb"),
        callbacks=[
            # before StepCheckpoint: a step's checkpoint holds the average that includes the step
            *([EMAWeightAveraging(decay=t.ema_decay)] if t.ema_decay else []),
            StepCheckpoint(checkpoint_dir(run_dir), t.checkpoint_every),
            *([TimeBudgetSchedule()] if t.max_minutes else []),
            *callbacks,
        ],
        plugins=[AtomicCheckpointIO()],
        enable_checkpointing=False,
        use_distributed_sampler=False,
        log_every_n_steps=t.log_every,
        enable_progress_bar=t.progress,
        enable_model_summary=False,
        default_root_dir=str(run_dir),
    )


def pretrain(
    cfg: PretrainConfig,
    resume: bool = False,
    dataset: Any | None = None,
    sample_rate: int | None = None,
    callbacks: Sequence[pl.Callback] = (),
) -> Path:
    """Train per ``cfg``; returns the run folder. ``dataset``/``sample_rate`` replace the clip
    cache (tests, custom data): items ``(view_a, view_b, idx)`` and a ``set_epoch`` method."""
    run_dir = cfg.run_dir
    if dataset is None:
        sample_rate = cache_sample_rate(cfg)
    elif sample_rate is None:
        raise ValueError("pretrain(dataset=...) needs sample_rate")
    ckpt = check_resume(cfg, run_dir) if resume else None
    if not resume and (checkpoint_dir(run_dir) / LAST).is_file():
        raise ConfigError(
            f"run folder {run_dir} already holds a checkpoint",
            hint="pass --resume to continue it, or set run.dir / run.name",
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    with torch.random.fork_rng(devices=[]):  # initial weights from trainer.seed, globals untouched
        torch.manual_seed(cfg.trainer.seed)
        module = PretrainModule(cfg, sample_rate)
    if dataset is None:
        dataset = pair_dataset(cfg, module.encoder.input_samples, sample_rate)
    trainer = build_trainer(cfg, run_dir, callbacks)
    with warnings.catch_warnings():
        # batches are a function of the step (StepBatchSampler starts at the resumed step), so
        # Lightning's warning about resuming mid-epoch with a stateless loader does not apply
        warnings.filterwarnings("ignore", message=r"(?s).*dataloader is\s+not resumable")
        trainer.fit(
            module,
            datamodule=PairData(dataset, cfg),
            ckpt_path=str(ckpt) if ckpt else None,
            weights_only=True,
        )
    return run_dir
