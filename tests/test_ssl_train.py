"""Pretraining end to end on tiny synthetic data: learning, exact resume, export, NaN guard."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from audioclr.config import load_config
from audioclr.errors import AudioclrError, ConfigError
from audioclr.ssl.checkpoint import read_run_checkpoint
from audioclr.ssl.config import PretrainConfig
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import export_encoder, load_encoder
from audioclr.ssl.train import pretrain

SR = 8000
OFF = ["polarity", "filter", "delay", "pitch", "reverb", "background", "time_mask", "freq_mask"]


class ToyPairs(torch.utils.data.Dataset):
    """Stand-in for PairDataset: tracks are 3 tones from a shared set of 12 (similar spectra);
    two crops of one track per item, positions seeded by (seed, epoch, index)."""

    def __init__(self, n: int = 32, crop: int = 2000, seed: int = 0, nan: bool = False) -> None:
        self.crop, self.seed, self.epoch, self.nan = crop, seed, 0, nan
        g = np.random.default_rng(seed)
        t = np.arange(2 * SR) / SR
        freqs = 150 * 2 ** (np.arange(12) / 3)
        self.tracks = [
            0.2
            * sum(
                np.sin(2 * np.pi * f * t + g.uniform(0, 6))
                for f in g.choice(freqs, 3, replace=False)
            ).astype(np.float32)
            for _ in range(n)
        ]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.tracks)

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, self.epoch, i])
        x = self.tracks[i]
        a, b = rng.integers(0, len(x) - self.crop, 2)
        va = torch.from_numpy(x[a : a + self.crop].copy())
        vb = torch.from_numpy(x[b : b + self.crop].copy())
        if self.nan:
            va[0] = float("nan")
        return va, vb, i


class Record(pl.Callback):
    """Per-step (global_step, loss, pos_acc) as the training loop saw them."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.rows: list[tuple[int, float, float]] = []
        self.stop_at = stop_at

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if not outputs:
            return
        self.rows.append(
            (
                trainer.global_step,
                float(outputs["loss"]),
                float(trainer.callback_metrics["train/pos_acc"]),
            )
        )
        if self.stop_at is not None and trainer.global_step == self.stop_at:
            raise RuntimeError("simulated crash")


def tiny_cfg(tmp_path, *extra: str, method: str = "simclr") -> PretrainConfig:
    return load_config(
        PretrainConfig,
        None,
        [
            f"method={method}",
            f"run.dir={tmp_path / 'run'}",
            "data.num_workers=0",
            "model.encoder_kwargs={widths: [8, 16], n_mels: 16, n_fft: 256, hop_length: 128, "
            "input_samples: 2000, time_strides: [2, 1]}",
            "trainer.batch_size=16",
            "trainer.max_steps=40",
            "trainer.progress=false",
            "optim.warmup_steps=3",
            "optim.lr=3e-3",
            "simclr.projection_hidden=32",
            "simclr.projection_dim=16",
            "simclr.temperature=0.2",
            "looc.projection_hidden=32",
            "looc.projection_dim=16",
            "looc.groups=[gain, noise]",  # the transforms left on here
            "cpc.context_dim=16",
            "cpc.prediction_steps=2",
            "byol.projection_hidden=32",
            "byol.projection_dim=16",
            "byol.prediction_hidden=32",
            "vicreg.projection_hidden=32",
            "vicreg.projection_dim=32",
            "barlowtwins.projection_hidden=32",
            "barlowtwins.projection_dim=32",
            "augment.gain.p=1",
            "augment.noise.p=1",
            "augment.noise.min_snr_db=0",
            "augment.noise.max_snr_db=10",
            *[f"augment.{k}.p=0" for k in OFF],
            *extra,
        ],
    )


def full_then_crash(
    tmp_path, *extra: str, stop_at: int, method: str = "simclr"
) -> tuple[Record, PretrainConfig]:
    """Train run ``a`` to the end and run ``b`` until a simulated crash after step ``stop_at``.

    Returns ``a``'s per-step record and ``b``'s config (to resume)."""
    full = Record()
    pretrain(
        tiny_cfg(tmp_path / "a", *extra, method=method),
        dataset=ToyPairs(),
        sample_rate=SR,
        callbacks=[full],
    )
    cfg_b = tiny_cfg(tmp_path / "b", *extra, method=method)
    with pytest.raises(RuntimeError, match="simulated crash"):
        pretrain(cfg_b, dataset=ToyPairs(), sample_rate=SR, callbacks=[Record(stop_at=stop_at)])
    return full, cfg_b


def resume(cfg: PretrainConfig) -> Record:
    """Resume the run of ``cfg``; the per-step record of the steps it trains."""
    resumed = Record()
    pretrain(cfg, resume=True, dataset=ToyPairs(), sample_rate=SR, callbacks=[resumed])
    return resumed


def test_simclr_lowers_loss_and_lifts_positive_accuracy(tmp_path):
    rec = Record()
    run = pretrain(tiny_cfg(tmp_path), dataset=ToyPairs(), sample_rate=SR, callbacks=[rec])
    steps, losses, accs = map(np.array, zip(*rec.rows, strict=True))
    assert list(steps) == list(range(1, 41))
    chance = 1 / (2 * 16 - 1)
    assert losses[-8:].mean() < 0.7 * losses[:4].mean()
    assert accs[-8:].mean() > max(5 * chance, accs[:4].mean() + 0.1)
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert any((run / "tb").glob("events.out.tfevents.*"))


def test_cpc_lowers_loss(tmp_path):
    rec = Record()
    pretrain(
        tiny_cfg(tmp_path, "trainer.max_steps=25", "trainer.batch_size=8", method="cpc"),
        dataset=ToyPairs(),
        sample_rate=SR,
        callbacks=[rec],
    )
    _, losses, _ = map(np.array, zip(*rec.rows, strict=True))
    # 2 * 8 clips x 8 latent steps: an untrained InfoNCE sits near log(128)
    assert losses[:3].mean() == pytest.approx(math.log(16 * 8), abs=1.0)
    assert losses[-5:].mean() < losses[:3].mean() - 0.5


def test_kill_and_resume_equals_uninterrupted_run(tmp_path):
    extra = ("trainer.max_steps=6", "trainer.checkpoint_every=3", "trainer.batch_size=4")
    full, cfg_b = full_then_crash(tmp_path, *extra, stop_at=4)
    ckpt_b = torch.load(tmp_path / "b/run/checkpoints/step-00000003.ckpt", weights_only=True)
    ckpt_a = torch.load(tmp_path / "a/run/checkpoints/step-00000003.ckpt", weights_only=True)
    assert ckpt_b["global_step"] == 3
    for sa, sb in zip(
        ckpt_a["optimizer_states"][0]["state"].values(),
        ckpt_b["optimizer_states"][0]["state"].values(),
        strict=True,
    ):
        assert torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])
    with pytest.raises(ConfigError, match="already holds a checkpoint"):
        pretrain(cfg_b, dataset=ToyPairs(), sample_rate=SR)
    # the crash came after step 4 but before step 6's checkpoint: last.ckpt is step 3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # over pyproject's filters
        resumed = resume(cfg_b)
    # mid-epoch resume is exact (batches follow the step): Lightning's warning is not shown
    assert not [w for w in caught if "not resumable" in str(w.message)]
    assert [r[0] for r in resumed.rows] == [4, 5, 6]
    np.testing.assert_allclose(
        [r[1] for r in resumed.rows], [r[1] for r in full.rows[3:]], rtol=1e-5
    )
    final_a = read_run_checkpoint(tmp_path / "a/run")[1]
    final_b = read_run_checkpoint(tmp_path / "b/run")[1]
    for k in final_a:
        torch.testing.assert_close(final_a[k], final_b[k], rtol=1e-5, atol=1e-6)


def test_resume_refuses_a_changed_architecture(tmp_path):
    cfg = tiny_cfg(tmp_path, "trainer.max_steps=1", "trainer.batch_size=4")
    pretrain(cfg, dataset=ToyPairs(), sample_rate=SR)
    changed = tiny_cfg(tmp_path, "trainer.max_steps=2", "simclr.projection_dim=8")
    with pytest.raises(ConfigError, match="'simclr'"):
        pretrain(changed, resume=True, dataset=ToyPairs(), sample_rate=SR)
    with pytest.raises(ConfigError, match="'method'"):
        pretrain(
            tiny_cfg(tmp_path, "trainer.max_steps=2", method="byol"),
            resume=True,
            dataset=ToyPairs(),
            sample_rate=SR,
        )
    # another objective's section is not part of this run's architecture
    other = tiny_cfg(
        tmp_path, "trainer.max_steps=2", "trainer.batch_size=4", "byol.projection_dim=8"
    )
    pretrain(other, resume=True, dataset=ToyPairs(), sample_rate=SR)


def test_exported_run_encoder_reproduces_the_checkpoint(tmp_path):
    cfg = tiny_cfg(tmp_path, "trainer.max_steps=3", "trainer.batch_size=4")
    run = pretrain(cfg, dataset=ToyPairs(), sample_rate=SR)
    meta, state = read_run_checkpoint(run)
    reference = build_encoder("melcnn", SR, **meta["encoder_kwargs"])
    reference.load_state_dict(state)
    reference.eval()
    loaded = load_encoder(export_encoder(run, tmp_path / "enc.pt"))
    x = torch.from_numpy(ToyPairs().tracks[0][None, :6000].copy())
    with torch.no_grad():
        assert torch.equal(loaded.encoder(x), reference(x))
    assert loaded.sample_rate == SR and loaded.input_samples == 2000
    assert loaded.config["trainer"]["max_steps"] == 3 and loaded.config["method"] == "simclr"


class WeightSnapshots(pl.Callback):
    """The encoder's live weights and buffers after every step."""

    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.states.append({k: v.detach().clone() for k, v in module.encoder.state_dict().items()})


def test_ema_run_exports_the_moving_average_of_the_live_weights(tmp_path):
    decay = 0.6
    snaps = WeightSnapshots()
    cfg = tiny_cfg(
        tmp_path, "trainer.max_steps=6", "trainer.batch_size=4", f"trainer.ema_decay={decay}"
    )
    run = pretrain(cfg, dataset=ToyPairs(), sample_rate=SR, callbacks=[snaps])
    exported = load_encoder(export_encoder(run, tmp_path / "enc.pt")).encoder.state_dict()
    assert len(snaps.states) == 6
    moved = 0
    for key, value in exported.items():
        if not value.is_floating_point():
            continue
        average = snaps.states[0][key].double()  # the first update copies the weights
        for state in snaps.states[1:]:
            average = decay * average + (1 - decay) * state[key].double()
        torch.testing.assert_close(value.double(), average, rtol=1e-5, atol=1e-6)
        moved += not torch.allclose(value, snaps.states[-1][key], atol=1e-5)
    assert moved > 5  # the average is not the last step's weights


def test_kill_and_resume_with_ema_equals_uninterrupted_run(tmp_path):
    extra = ("trainer.max_steps=6", "trainer.checkpoint_every=3", "trainer.batch_size=4")
    full, cfg_b = full_then_crash(tmp_path, *extra, "trainer.ema_decay=0.5", stop_at=4)
    resume(cfg_b)
    final_a = read_run_checkpoint(tmp_path / "a/run")[1]
    final_b = read_run_checkpoint(tmp_path / "b/run")[1]
    for k in final_a:  # the average, kept in the step-3 checkpoint and updated from step 4 on
        torch.testing.assert_close(final_a[k], final_b[k], rtol=1e-5, atol=1e-6)


def test_ema_decay_outside_zero_one_is_an_error_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match="trainer.ema_decay"):
        tiny_cfg(tmp_path, "trainer.ema_decay=1.0")


def test_non_finite_loss_skips_updates_then_stops(tmp_path):
    cfg = tiny_cfg(
        tmp_path,
        "trainer.max_steps=5",
        "trainer.batch_size=4",
        "trainer.max_bad_steps=2",
        "augment.noise.p=0",
    )
    rec = Record()
    with pytest.raises(AudioclrError, match="non-finite"):
        pretrain(cfg, dataset=ToyPairs(nan=True), sample_rate=SR, callbacks=[rec])
    assert rec.rows == []  # no step was taken


def test_augment_in_workers_uses_the_step_generator_and_resumes_exactly(tmp_path):
    from audioclr.augment.batched import BatchedAugment
    from audioclr.ssl.data import AugmentCollate, step_seed

    cfg = tiny_cfg(tmp_path, "data.augment_on=workers")
    aug = BatchedAugment(cfg.augment, SR)
    ds = ToyPairs()
    items = [(*ds[i], 7) for i in (3, 5)]
    a, b, idx, done = AugmentCollate(aug, seed=0, rank=0)(items)
    g = torch.Generator().manual_seed(step_seed(0, 7, 0))
    expect = aug(torch.stack([items[0][0], items[1][0], items[0][1], items[1][1]]), g)
    assert done and idx.tolist() == [3, 5]
    torch.testing.assert_close(torch.cat([a, b]), expect)
    assert not torch.equal(a[0], items[0][0])  # gain and noise were applied
    # training in this mode also resumes to the same losses
    extra = (
        "data.augment_on=workers",
        "trainer.max_steps=4",
        "trainer.checkpoint_every=2",
        "trainer.batch_size=4",
    )
    full, cfg_b = full_then_crash(tmp_path, *extra, stop_at=3)
    resumed = resume(cfg_b)
    np.testing.assert_allclose(
        [r[1] for r in resumed.rows], [r[1] for r in full.rows[2:]], rtol=1e-5
    )


def test_cosine_follows_the_time_budget_when_it_ends_the_run_first(tmp_path):
    class Lr(pl.Callback):
        def __init__(self) -> None:
            self.lrs: list[float] = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    lr = Lr()
    cfg = tiny_cfg(
        tmp_path, "trainer.max_steps=1000000", "trainer.max_minutes=0.1", "optim.min_lr_ratio=0.0"
    )
    pretrain(cfg, dataset=ToyPairs(), sample_rate=SR, callbacks=[lr])
    after_warmup = lr.lrs[3:]
    assert 10 < len(lr.lrs) < 1000000  # stopped by the clock
    # the peak, right after warmup: below 3e-3 by what the clock ran during warmup (on a loaded
    # machine 10-25 % of the 6 s budget), far above the annealed end
    assert 0.6 * 3e-3 < max(after_warmup) <= 3e-3 + 1e-12
    assert all(b <= a + 1e-12 for a, b in zip(after_warmup, after_warmup[1:], strict=False))
    assert after_warmup[-1] < 0.05 * 3e-3  # annealed by the end, not stuck near the peak


def test_schedule_takes_the_further_of_steps_and_time() -> None:
    from audioclr.ssl.schedule import WarmupCosine

    f = WarmupCosine(warmup_steps=0, total_steps=100, min_ratio=0.0)
    assert f(50) == pytest.approx(0.5)
    f.time_progress = 0.5
    assert f(10) == pytest.approx(0.5)  # time ahead: half way down the cosine
    assert f(75) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.75)))  # steps ahead
    f.time_progress = 1.0
    assert f(1) == pytest.approx(0.0)


class TwoCaches:
    """What ``cache_pools`` reads of a MultiCache: tracks 0-23 in cache 0, 24-31 in cache 1."""

    caches = (0, 1)

    @staticmethod
    def member(i: int) -> int:
        return int(i >= 24)


class SeenItems(pl.Callback):
    """The dataset items of every training batch."""

    def __init__(self) -> None:
        self.items: list[list[int]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.items.append([int(i) for i in batch[2]])


def test_cache_shares_set_the_part_of_each_cache_in_training_batches(tmp_path) -> None:
    data = ToyPairs(n=32)
    data.cache, data.indices = TwoCaches(), list(range(32))
    seen = SeenItems()
    cfg = tiny_cfg(tmp_path, "data.cache_shares=[1, 1]", "trainer.max_steps=8")
    pretrain(cfg, dataset=data, sample_rate=SR, callbacks=[seen])
    # epochs of 8 + 8 items (the 8-track cache limits), batches of 16: one epoch per step
    assert len(seen.items) == 8
    for items in seen.items:
        assert len(set(items)) == 16 and sum(i >= 24 for i in items) == 8
    plain = SeenItems()
    cfg = tiny_cfg(tmp_path / "p", "trainer.max_steps=8")
    pretrain(cfg, dataset=ToyPairs(n=32), sample_rate=SR, callbacks=[plain])
    assert sum(i >= 24 for b in plain.items for i in b) == 8 * 16 * 8 // 32  # per track: 1/4


def test_one_cache_per_batch_trains_on_batches_of_one_cache(tmp_path) -> None:
    def two_caches() -> ToyPairs:
        data = ToyPairs(n=40)  # cache 0: tracks 0-23, cache 1: 24-39
        data.cache, data.indices = TwoCaches(), list(range(40))
        return data

    seen = SeenItems()
    extra = ("data.one_cache_per_batch=true", "trainer.max_steps=10", "trainer.batch_size=8")
    pretrain(tiny_cfg(tmp_path, *extra), dataset=two_caches(), sample_rate=SR, callbacks=[seen])
    assert len(seen.items) == 10
    assert all(len({i >= 24 for i in items}) == 1 for items in seen.items)
    assert sum(items[0] >= 24 for items in seen.items[:5]) == 2  # an epoch: 3 + 2 batches
    with pytest.raises(ConfigError, match="data.one_cache_per_batch"):
        big = tiny_cfg(tmp_path / "big", *extra, "trainer.batch_size=20")
        pretrain(big, dataset=two_caches(), sample_rate=SR)


def test_fewer_tracks_than_a_batch_is_an_error_naming_the_key(tmp_path) -> None:
    from audioclr.errors import ConfigError
    from audioclr.ssl.train import check_enough_tracks

    check_enough_tracks(8, 4, 2)  # exactly one step's worth over 2 ranks: fine
    with pytest.raises(ConfigError, match="trainer.batch_size") as exc:
        check_enough_tracks(7, 4, 2)
    assert "batch_size=3" in exc.value.hint
    cfg = tiny_cfg(tmp_path, "trainer.batch_size=8", "trainer.max_steps=1")
    with pytest.raises(ConfigError, match="only 6 usable tracks"):
        pretrain(cfg, dataset=ToyPairs(n=6), sample_rate=SR)


def _cpuinfo_has_native_bf16() -> bool:
    """Independent of torch: the kernel's CPU flags name AVX512-BF16 or AMX."""
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[1].split())
    return bool(flags & {"avx512_bf16", "amx_tile"})


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="needs Linux's /proc/cpuinfo")
def test_native_bfloat16_detection_agrees_with_the_cpu_flags() -> None:
    from audioclr.ssl.train import cpu_has_native_bf16

    assert cpu_has_native_bf16() == _cpuinfo_has_native_bf16()


def test_cpu_precision_is_bf16_only_with_native_bfloat16(monkeypatch) -> None:
    from audioclr.ssl import train

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def cfg(p: str) -> PretrainConfig:
        return load_config(PretrainConfig, None, [f"trainer.precision={p}"])

    assert train.precision_for(cfg("32")) == "32-true"
    monkeypatch.setattr(train, "cpu_has_native_bf16", lambda: True)
    assert (
        train.precision_for(cfg("bf16-mixed")) == train.precision_for(cfg("auto")) == "bf16-mixed"
    )
    with pytest.raises(ConfigError, match="trainer.precision.*CUDA only"):
        train.precision_for(cfg("16-mixed"))
    monkeypatch.setattr(train, "cpu_has_native_bf16", lambda: False)
    assert train.precision_for(cfg("auto")) == "32-true"
    with pytest.raises(ConfigError, match="trainer.precision.*no native bfloat16"):
        train.precision_for(cfg("bf16-mixed"))


@pytest.mark.skipif(not _cpuinfo_has_native_bf16(), reason="this CPU has no native bfloat16")
def test_bf16_mixed_on_cpu_convolves_in_bfloat16_and_learns(tmp_path):
    class ConvDtype(pl.Callback):
        """The first convolution's output dtype at every training forward."""

        def __init__(self) -> None:
            self.dtypes: list[torch.dtype] = []

        def on_train_start(self, trainer, module):
            conv = next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d))
            conv.register_forward_hook(
                lambda m, i, out: self.dtypes.append(out.dtype) if m.training else None
            )

    rec, seen = Record(), ConvDtype()
    cfg = tiny_cfg(tmp_path, "trainer.precision=bf16-mixed")
    pretrain(cfg, dataset=ToyPairs(), sample_rate=SR, callbacks=[rec, seen])
    assert len(seen.dtypes) == 40 and set(seen.dtypes) == {torch.bfloat16}
    _, losses, accs = map(np.array, zip(*rec.rows, strict=True))
    assert losses[-8:].mean() < 0.7 * losses[:4].mean()  # the float32 test's bar
    assert accs[-8:].mean() > max(5 / 31, accs[:4].mean() + 0.1)
