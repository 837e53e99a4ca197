"""AugSelf: the applied parameters BatchedAugment returns (measured on the output signal), the
auxiliary head (learns what is learnable, stays at chance otherwise), and pretraining with it
(every objective's encoder output is captured; logged; exact resume; the workers path)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from test_ssl_train import SR, Record, ToyPairs, tiny_cfg

from audioclr.augment.batched import BatchedAugment
from audioclr.augment.config import AugmentConfig, identity_config
from audioclr.augment.params import PARAM_NAMES, param_ranges
from audioclr.errors import ConfigError
from audioclr.ssl.augself import AugSelfHead, capture_pooled, difference_targets
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.objectives import OBJECTIVES
from audioclr.ssl.train import pretrain

RATE = 16000
NEUTRAL = {name: (1.0 if name == "polarity.sign" else 0.0) for name in PARAM_NAMES}


def col(params: torch.Tensor, name: str) -> torch.Tensor:
    return params[:, PARAM_NAMES.index(name)]


def only(name: str, **settings: float | str) -> AugmentConfig:
    """An identity chain with one transform on (``p = 1`` unless given)."""
    cfg = identity_config()
    section = getattr(cfg, name)
    section.p = 1.0
    for key, value in settings.items():
        setattr(section, key, value)
    return cfg


def augment(cfg: AugmentConfig, x: torch.Tensor, seed: int = 0):
    return BatchedAugment(cfg, RATE)(x, torch.Generator().manual_seed(seed), return_params=True)


def peak_hz(y: torch.Tensor) -> torch.Tensor:
    """``(batch,)`` frequency of the spectral peak (Hann window, 8x zero padding, parabolic
    interpolation on the log magnitude)."""
    n = 8 * y.shape[-1]
    spec = torch.fft.rfft(y * torch.hann_window(y.shape[-1], periodic=False), n=n).abs()
    k = spec.argmax(-1)
    a, b, c = (spec.gather(1, (k + d)[:, None])[:, 0].log() for d in (-1, 0, 1))
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * RATE / n


def welch_db(x: torch.Tensor, n_fft: int = 2048) -> torch.Tensor:
    """``(batch, n_fft // 2 + 1)`` power spectrum in dB, averaged over Hann frames."""
    spec = torch.stft(
        x, n_fft, hop_length=n_fft // 4, window=torch.hann_window(n_fft), return_complex=True
    )
    return 10 * torch.log10(spec.abs().pow(2).mean(-1))


@pytest.mark.parametrize("method", ["grain", "stft"])
def test_pitch_shift_moves_a_tone_by_the_returned_semitones(method):
    t = torch.arange(RATE) / RATE
    x = (0.5 * torch.sin(2 * math.pi * 440 * t)).repeat(16, 1)
    y, params = augment(only("pitch", method=method), x)
    moved = 12 * torch.log2(peak_hz(y) / peak_hz(x))
    semitones = col(params, "pitch.semitones")
    assert len(set(semitones.tolist())) > 5  # several shifts drawn
    # measured: at most 0.08 semitone off (grain), 4e-6 (stft)
    torch.testing.assert_close(moved, semitones, rtol=0, atol=0.3)


def test_filter_cutoff_measured_at_minus_3_db_is_the_returned_cutoff():
    x = torch.randn(32, 4 * RATE, generator=torch.Generator().manual_seed(1))
    y, params = augment(only("filter"), x)
    gain_db = welch_db(y) - welch_db(x)
    freqs = torch.fft.rfftfreq(2048, 1 / RATE)
    highpass = col(params, "filter.highpass") == 1
    assert highpass.any() and (~highpass).any()
    assert torch.equal(col(params, "filter.lowpass"), (~highpass).float())
    for i in range(len(x)):
        d = gain_db[i]
        passing = d > -10 * math.log10(2)
        k = int((passing if highpass[i] else ~passing).nonzero().min())  # first bin past -3 dB
        fc = freqs[k - 1] + (freqs[k] - freqs[k - 1]) * (-3.0103 - d[k - 1]) / (d[k] - d[k - 1])
        low, high = d[: k // 2].mean(), d[min(2 * k, len(d) - 1) :].mean()
        assert (low < -20 < -1 < high) if highpass[i] else (high < -20 < -1 < low)
        # measured: within 0.038 semitone (0.0032 octave) over these 32 filters
        assert math.log2(fc) == pytest.approx(
            float(col(params, "filter.log2_cutoff_hz")[i]), abs=0.1 / 12
        )


def test_gain_and_polarity_are_what_the_signal_shows():
    x = torch.randn(32, RATE, generator=torch.Generator().manual_seed(2))
    cfg = only("gain", p=0.5)
    cfg.polarity.p = 0.5
    y, params = augment(cfg, x)
    gain = col(params, "gain.gain_db")
    rms_db = 20 * torch.log10(y.pow(2).mean(-1).sqrt() / x.pow(2).mean(-1).sqrt())
    torch.testing.assert_close(rms_db, gain, rtol=0, atol=1e-3)
    assert (gain == 0).any() and (gain < -1).any()
    sign = col(params, "polarity.sign")
    assert set(sign.tolist()) == {-1.0, 1.0}
    assert torch.all((y * sign[:, None] * x).sum(-1) > 0)  # same sign as the input where +1


def test_inactive_transforms_give_neutral_values():
    x = torch.randn(16, RATE // 2, generator=torch.Generator().manual_seed(3))
    y, params = augment(identity_config(), x)
    assert torch.equal(y, x)
    assert torch.equal(params, torch.tensor([NEUTRAL[n] for n in PARAM_NAMES]).expand(16, -1))
    cfg = AugmentConfig()
    for name in ("noise", "background", "polarity"):
        getattr(cfg, name).p = 0.5
    aug = BatchedAugment(cfg, RATE)
    q = aug.sample_params(16, torch.Generator().manual_seed(4))
    _, params = aug(x, torch.Generator().manual_seed(4), return_params=True)
    for name in PARAM_NAMES:
        transform = name.split(".")[0]
        off = ~q[f"{transform}.active"].bool()
        assert off.any() and (~off).any(), transform
        assert torch.all(col(params, name)[off] == NEUTRAL[name]), name
        assert torch.all(col(params, name)[~off] != NEUTRAL[name]) or name in (
            "pitch.semitones",
            "filter.highpass",
            "filter.lowpass",
        ), name  # 0 st, one kind
    lo, hi = param_ranges(cfg)
    assert torch.all((params >= lo) & (params <= hi))


def test_default_call_is_bit_identical_to_the_one_returning_params():
    cfg = AugmentConfig()
    cfg.background.p = 0.5
    aug = BatchedAugment(cfg, RATE)
    x = torch.randn(12, RATE // 2, generator=torch.Generator().manual_seed(5))
    y = aug(x, torch.Generator().manual_seed(6))
    y2, params = aug(x, torch.Generator().manual_seed(6), return_params=True)
    assert torch.equal(y, y2) and params.shape == (12, len(PARAM_NAMES))


def test_targets_are_view_differences_on_the_varying_columns():
    cfg = only("gain", min_gain_db=-20.0, max_gain_db=-1.0)
    cfg.polarity.p = 0.0
    head = AugSelfHead(4, cfg, hidden=8)
    assert head.names == ("gain.gain_db",) and head.scales.tolist() == [19.0]
    params = torch.zeros(4, len(PARAM_NAMES))
    params[:, PARAM_NAMES.index("gain.gain_db")] = torch.tensor([-1.0, -20.0, -20.0, -1.0])
    target = difference_targets(params, head.columns, head.scales)  # view a minus view b
    assert target[:, 0].tolist() == [1.0, -1.0]
    with pytest.raises(ConfigError, match="augself.weight"):
        AugSelfHead(4, identity_config())


def toy_batches(cfg: AugmentConfig, step: int, n: int = 16):
    """``n`` toy pairs (two crops of a track), augmented: ``(2n, samples)``, params ``(2n, P)``."""
    ds, g = ToyPairs(), torch.Generator().manual_seed(1000 + step)
    items = [ds[i] for i in torch.randint(len(ds), (n,), generator=g).tolist()]
    x = torch.cat([torch.stack([it[0] for it in items]), torch.stack([it[1] for it in items])])
    return BatchedAugment(cfg, SR)(x, g, return_params=True)


def train_head(shuffle: bool, steps: int = 60) -> tuple[float, float]:
    """Encoder + head trained on gain-only views for ``steps``; returns (held-out loss, variance
    of the held-out targets). ``shuffle``: targets permuted across examples (unlearnable)."""
    cfg = only("gain")
    torch.manual_seed(0)
    enc = build_encoder(
        "melcnn",
        SR,
        widths=[8, 16],
        n_mels=16,
        n_fft=256,
        hop_length=128,
        input_samples=2000,
        time_strides=[2, 1],
    )
    head = AugSelfHead(enc.output_dim, cfg, hidden=32)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=3e-3)

    def data(step: int, n: int = 16):
        x, params = toy_batches(cfg, step, n)
        if shuffle:
            params = params[
                torch.randperm(len(params), generator=torch.Generator().manual_seed(step))
            ]
        return x, params

    for step in range(steps):
        x, params = data(step)
        loss = head(enc(x), params)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        held_out = [data(10_000 + s, 64) for s in range(4)]
        loss = np.mean([head(enc(x), p).item() for x, p in held_out])
        var = np.mean(
            [
                difference_targets(p, head.columns, head.scales).var(0, correction=0).mean().item()
                for _, p in held_out
            ]
        )
    return float(loss), float(var)


def test_head_learns_a_learnable_parameter_and_not_an_unlearnable_one():
    # measured: learnable 0.0037 against a target variance of 0.167 (ratio 0.02);
    # shuffled targets 0.142 against 0.142 (ratio 1.00)
    loss, var = train_head(shuffle=False)
    assert loss < 0.1 * var, (loss, var)
    loss, var = train_head(shuffle=True)
    assert loss > 0.85 * var, (loss, var)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_objective_exposes_one_pooled_output_of_the_whole_batch(tmp_path, name):
    from audioclr.ssl.module import PretrainModule

    cfg = tiny_cfg(tmp_path, "augself.weight=0.5", "augself.hidden=8", method=name)
    module = PretrainModule(cfg, SR)
    x = torch.randn(8, 2000, generator=torch.Generator().manual_seed(0))
    with capture_pooled(module.encoder) as seen:
        module.objective.loss(module.encoder, x, None, torch.Generator().manual_seed(0))
    assert [tuple(h.shape) for h in seen] == [(8, module.encoder.output_dim)]
    expect = module.encoder.frames(x).mean(dim=2) if name == "cpc" else module.encoder(x)
    torch.testing.assert_close(seen[0], expect)
    assert "frames" not in vars(module.encoder)  # the method is restored


class Logged(pl.Callback):
    """``train/augself_loss`` of every step."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.values.append(float(trainer.callback_metrics["train/augself_loss"]))


@pytest.mark.parametrize("name", ["simclr", "byol"])
def test_pretraining_with_augself_logs_it_and_resumes_exactly(tmp_path, name):
    extra = (
        "augself.weight=0.5",
        "augself.hidden=16",
        "trainer.max_steps=6",
        "trainer.checkpoint_every=3",
        "trainer.batch_size=4",
    )
    full, logged = Record(), Logged()
    pretrain(
        tiny_cfg(tmp_path / "a", *extra, method=name),
        dataset=ToyPairs(),
        sample_rate=SR,
        callbacks=[full, logged],
    )
    assert len(logged.values) == 6 and all(v > 0 for v in logged.values)
    cfg_b = tiny_cfg(tmp_path / "b", *extra, method=name)
    with pytest.raises(RuntimeError, match="simulated crash"):
        pretrain(cfg_b, dataset=ToyPairs(), sample_rate=SR, callbacks=[Record(stop_at=4)])
    resumed = Record()
    pretrain(cfg_b, resume=True, dataset=ToyPairs(), sample_rate=SR, callbacks=[resumed])
    assert [r[0] for r in resumed.rows] == [4, 5, 6]
    np.testing.assert_allclose(
        [r[1] for r in resumed.rows], [r[1] for r in full.rows[3:]], rtol=0, atol=1e-6
    )
    state = torch.load(tmp_path / "b/run/checkpoints/last.ckpt", weights_only=True)["state_dict"]
    assert any(k.startswith("augself.") for k in state)
    with pytest.raises(ConfigError, match="'augself'"):  # the head is part of the architecture
        pretrain(
            tiny_cfg(tmp_path / "b", *extra, "augself.hidden=8", method=name),
            resume=True,
            dataset=ToyPairs(),
            sample_rate=SR,
        )


def test_workers_path_carries_the_params_and_gives_the_device_losses(tmp_path):
    extra = (
        "augself.weight=0.5",
        "augself.hidden=16",
        "trainer.max_steps=3",
        "trainer.batch_size=4",
    )
    device, workers = Record(), Record()
    pretrain(
        tiny_cfg(tmp_path / "d", *extra, "data.augment_on=device"),
        dataset=ToyPairs(),
        sample_rate=SR,
        callbacks=[device],
    )
    pretrain(
        tiny_cfg(tmp_path / "w", *extra, "data.augment_on=workers"),
        dataset=ToyPairs(),
        sample_rate=SR,
        callbacks=[workers],
    )
    np.testing.assert_allclose(
        [r[1] for r in workers.rows], [r[1] for r in device.rows], rtol=0, atol=1e-6
    )


def test_augself_config_is_validated():
    from audioclr.config import load_config
    from audioclr.ssl.config import PretrainConfig

    for bad in ("augself.weight=-1", "augself.hidden=0"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            load_config(PretrainConfig, None, [bad])
    assert load_config(PretrainConfig, None, []).augself.weight == 0.0


def test_both_paths_hand_the_step_the_params_of_its_views_in_order(tmp_path):
    from audioclr.ssl.data import AugmentCollate, step_seed
    from audioclr.ssl.module import PretrainModule

    cfg = tiny_cfg(tmp_path, "augself.weight=0.5", "augment.polarity.p=0.5")
    module = PretrainModule(cfg, SR)
    ds = ToyPairs()
    items = [(*ds[i], 7) for i in (3, 5, 8)]
    g = torch.Generator().manual_seed(step_seed(0, 7, 0))
    raw = torch.stack([*(it[0] for it in items), *(it[1] for it in items)])
    expect_x, expect_p = module.augment(raw, g, return_params=True)
    a, b, idx, done, params = AugmentCollate(module.augment, 0, 0, params=True)(items)
    assert done and torch.equal(torch.cat([a, b]), expect_x) and torch.equal(params, expect_p)
    x, params = module.views(
        (raw[:3], raw[3:], idx), torch.Generator().manual_seed(step_seed(0, 7, 0))
    )
    assert torch.equal(x, expect_x) and torch.equal(params, expect_p)
    x, params = module.views((a, b, idx, True, expect_p), g)  # already augmented: passed on
    assert torch.equal(x, expect_x) and torch.equal(params, expect_p)
    assert len(AugmentCollate(module.augment, 0, 0)(items)) == 4  # no params unless asked
