"""Each transform measured on both execution paths (batched torch and per-example CPU)."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch
from conftest import tone

from audioclr.augment.batched import BatchedAugment
from audioclr.augment.config import AugmentConfig, identity_config
from audioclr.augment.cpu import CPUAugment

SR = 16000
PATHS = ("batched", "cpu")


def only(name: str, **fields: float) -> AugmentConfig:
    """A config where only transform ``name`` is on (p = 1), with ``fields`` overridden."""
    cfg = identity_config()
    sub = dataclasses.replace(getattr(cfg, name), p=1.0, **fields)
    return dataclasses.replace(cfg, **{name: sub})


def run(path: str, cfg: AugmentConfig, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Views of ``x`` ``(batch, samples)`` through one path, as numpy ``(batch, samples)``."""
    if path == "batched":
        g = torch.Generator().manual_seed(seed)
        return BatchedAugment(cfg, SR)(torch.from_numpy(x), g).numpy()
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # background mixing is batched-only (warned)
        aug = CPUAugment(cfg, SR)
    return np.stack([aug(row, rng) for row in x])


def noise(batch: int, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal((batch, int(SR * seconds)))).astype(
        np.float32
    )


def band_db(x: np.ndarray, lo_hz: float, hi_hz: float) -> float:
    """Mean power (dB) of ``x``'s spectrum between ``lo_hz`` and ``hi_hz``."""
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    return float(10 * np.log10(spec[(freqs >= lo_hz) & (freqs <= hi_hz)].mean()))


def peak_hz(x: np.ndarray) -> float:
    """Frequency of the spectrum's peak, refined by parabolic interpolation."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(np.argmax(spec))
    a, b, c = np.log(spec[k - 1 : k + 2] + 1e-12)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * SR / len(x)


@pytest.mark.parametrize("path", PATHS)
def test_p0_is_identity(path: str) -> None:
    x = noise(3)
    np.testing.assert_array_equal(run(path, identity_config(), x), x)


@pytest.mark.parametrize("path", PATHS)
def test_polarity_flips_sign(path: str) -> None:
    x = noise(3)
    np.testing.assert_allclose(run(path, only("polarity"), x), -x)


@pytest.mark.parametrize("path", PATHS)
def test_gain_lands_in_range(path: str) -> None:
    x = noise(12)
    y = run(path, only("gain", min_gain_db=-12.0, max_gain_db=-6.0), x)
    measured = 20 * np.log10(np.sqrt((y**2).mean(1)) / np.sqrt((x**2).mean(1)))
    assert np.all((measured >= -12.001) & (measured <= -5.999))
    assert measured.std() > 0.5  # per-example draws


@pytest.mark.parametrize("path", PATHS)
def test_noise_snr_in_range(path: str) -> None:
    x = np.stack([tone(440, SR, 1.0)] * 6)
    y = run(path, only("noise", min_snr_db=10.0, max_snr_db=20.0), x)
    snr = 10 * np.log10((x**2).mean(1) / ((y - x) ** 2).mean(1))
    assert np.all((snr > 9.5) & (snr < 20.5))


@pytest.mark.parametrize("path", PATHS)
def test_highpass_attenuates_octave_below_cutoff(path: str) -> None:
    cfg = only("filter", highpass_share=1.0, min_highpass_hz=1000.0, max_highpass_hz=1000.0)
    y = run(path, cfg, noise(2, 2.0))
    for row in y:
        assert band_db(row, 2000, 4000) - band_db(row, 450, 550) >= 20.0


@pytest.mark.parametrize("path", PATHS)
def test_lowpass_attenuates_octave_above_cutoff(path: str) -> None:
    cfg = only("filter", highpass_share=0.0, min_lowpass_hz=2000.0, max_lowpass_hz=2000.0)
    y = run(path, cfg, noise(2, 2.0))
    for row in y:
        assert band_db(row, 300, 1000) - band_db(row, 3800, 4200) >= 20.0


@pytest.mark.parametrize("path", PATHS)
def test_delay_shows_autocorrelation_peak_at_delay(path: str) -> None:
    cfg = only(
        "delay", min_delay_ms=150.0, max_delay_ms=150.0, min_volume=0.6, max_volume=0.6, echoes=1
    )
    y = run(path, cfg, noise(2))
    lag = int(0.150 * SR)
    for row in y:
        ac = np.correlate(row, row[: len(row) // 2], mode="valid")  # ac[k] = sum y[n + k] y[n]
        assert abs(int(np.argmax(ac[50:])) + 50 - lag) <= 1
        assert ac[lag] / ac[0] > 0.3


@pytest.mark.parametrize("path", [*PATHS, "grain"])
@pytest.mark.parametrize("semitones", [-7.0, -2.0, 3.0, 7.0])
def test_pitch_shift_moves_f0_and_keeps_length(path: str, semitones: float) -> None:
    x = np.stack([tone(440, SR, 1.5)])
    cfg = only("pitch", min_semitones=semitones, max_semitones=semitones)
    if path == "grain":  # the batched path's fast method
        path, cfg.pitch.method = "batched", "grain"
    y = run(path, cfg, x)
    assert y.shape == x.shape
    moved = 12 * math.log2(peak_hz(y[0]) / 440)
    assert abs(moved - semitones) < 0.3
    level_db = 10 * math.log10((y[0] ** 2).mean() / (x[0] ** 2).mean())
    assert abs(level_db) < 1.0


def late_energy(y: np.ndarray, onset: int) -> float:
    """Share of energy later than 100 ms after ``onset``."""
    return float((y[onset + int(0.1 * SR) :] ** 2).sum() / (y**2).sum())


@pytest.mark.parametrize("path", PATHS)
def test_reverb_lengthens_impulse_decay(path: str) -> None:
    x = np.zeros((1, SR), np.float32)
    x[0, 100] = 1.0
    assert late_energy(x[0], 100) == 0.0
    short = run(path, only("reverb", min_rt60_s=0.2, max_rt60_s=0.2, min_wet=0.5, max_wet=0.5), x)
    long = run(path, only("reverb", min_rt60_s=0.8, max_rt60_s=0.8, min_wet=0.5, max_wet=0.5), x)
    assert np.abs(short[0, :100]).max() < 1e-6  # causal
    assert late_energy(long[0], 100) > 0.05
    assert late_energy(long[0], 100) > 2 * late_energy(short[0], 100)


def all_on() -> AugmentConfig:
    cfg = AugmentConfig()
    for name in ("polarity", "noise", "gain", "filter", "delay", "pitch", "reverb", "background"):
        setattr(cfg, name, dataclasses.replace(getattr(cfg, name), p=1.0))
    return cfg


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("signal", ["silence", "noise"])
def test_full_chain_finite_shape_dtype(path: str, signal: str) -> None:
    x = np.zeros((4, SR), np.float32) if signal == "silence" else noise(4)
    y = run(path, all_on(), x)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.isfinite(y).all()
    if signal == "silence":
        assert np.abs(y).max() == 0.0


def test_batched_keeps_dtype_float64() -> None:
    x = torch.from_numpy(noise(3)).double()
    y = BatchedAugment(all_on(), SR)(x, torch.Generator().manual_seed(0))
    assert y.dtype == torch.float64 and y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("path", PATHS)
def test_same_seed_same_views_other_seed_different(path: str) -> None:
    x = noise(4)
    a, b, c = (
        run(path, AugmentConfig(), x, 5),
        run(path, AugmentConfig(), x, 5),
        run(path, AugmentConfig(), x, 6),
    )
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_background_mix_snr_in_range() -> None:
    x = noise(6, seed=3) * np.linspace(0.5, 2.0, 6, dtype=np.float32)[:, None]
    y = run("batched", only("background", min_snr_db=5.0, max_snr_db=10.0), x)
    snr = 10 * np.log10((x**2).mean(1) / ((y - x) ** 2).mean(1))
    assert np.all((snr > 4.99) & (snr < 10.01))
    residual = y - x  # a scaled copy of another clip of the batch
    for i, r in enumerate(residual):
        corr = [abs(np.corrcoef(r, x[j])[0, 1]) for j in range(len(x))]
        assert int(np.argmax(corr)) != i and max(corr) > 0.999


def test_cpu_path_leaves_global_rng_untouched() -> None:
    import random

    random.seed(7)
    np.random.seed(7)
    expected = (random.random(), np.random.random())
    random.seed(7)
    np.random.seed(7)
    with pytest.warns(UserWarning, match="background"):
        aug = CPUAugment(all_on(), SR)
    aug(noise(1)[0], np.random.default_rng(0))
    assert (random.random(), np.random.random()) == expected


def batched_shift(x: np.ndarray, semitones: float, method: str) -> np.ndarray:
    """``x`` (samples,) through the batched path with only the pitch shift on."""
    cfg = only("pitch", min_semitones=semitones, max_semitones=semitones)
    cfg.pitch.method = method
    return run("batched", cfg, x[None])[0]


# The vocoder keeps a tone's envelope steady and partials' levels; the grain shifter's two heads,
# half a grain apart, comb-filter partials by a few dB and a tone dips where they crossfade.
@pytest.mark.parametrize(("method", "level_db", "dip"), [("stft", 1.0, 0.8), ("grain", 3.5, 0.5)])
@pytest.mark.parametrize("semitones", [-7.0, 5.0])
def test_batched_pitch_shift_moves_every_partial_with_a_steady_envelope(
    semitones: float, method: str, level_db: float, dip: float
) -> None:
    x = tone(440, SR, 1.0) + tone(1000, SR, 1.0, amplitude=0.25)
    y = batched_shift(x, semitones, method)
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    r = 2 ** (semitones / 12)
    low, high = freqs < 700 * r, freqs >= 700 * r  # each partial's peak, on its side of 700 r Hz
    assert abs(freqs[low][np.argmax(spec[low])] - 440 * r) < 3
    assert abs(freqs[high][np.argmax(spec[high])] - 1000 * r) < 3
    relative_db = 20 * math.log10(spec[high].max() / spec[low].max() / 0.5)  # 0 = levels kept
    assert abs(relative_db) < level_db
    blocks = np.abs(batched_shift(tone(440, SR, 1.0), semitones, method)).reshape(-1, 200).max(1)
    assert blocks.max() < 0.65 and np.median(blocks) > 0.45  # no clicks, no level change
    assert blocks.min() > dip * np.median(blocks)


def test_batched_pitch_shift_by_zero_reconstructs() -> None:
    from audioclr.augment.functional import pitch_shift

    x = torch.from_numpy(noise(2))
    np.testing.assert_allclose(
        pitch_shift(x, torch.zeros(2)).numpy(), x.numpy(), atol=1e-3
    )  # float32 phase sums


def deterministic_apply_config() -> AugmentConfig:
    """Every transform whose ``apply`` draws nothing (noise, reverb, background off)."""
    cfg = all_on()
    for name in ("noise", "reverb", "background"):
        setattr(cfg, name, dataclasses.replace(getattr(cfg, name), p=0.0))
    return cfg


@pytest.mark.parametrize(("method", "atol"), [("grain", 1e-6), ("stft", 2e-3)])
def test_batched_batch_equals_item_by_item(method: str, atol: float) -> None:
    cfg = deterministic_apply_config()
    cfg.pitch.method = method
    aug = BatchedAugment(cfg, SR)
    x = torch.from_numpy(noise(6))
    g = torch.Generator().manual_seed(3)
    params = aug.sample_params(6, g)
    whole = aug.apply(x, params, g)
    for i in range(6):
        one = aug.apply(x[i : i + 1], {k: v[i : i + 1] for k, v in params.items()}, g)
        # FFT rounding differs with the batch size; the vocoder's phase wrapping amplifies it
        torch.testing.assert_close(one[0], whole[i], atol=atol, rtol=0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batched_cuda_matches_cpu() -> None:
    aug = BatchedAugment(deterministic_apply_config(), SR)
    x = torch.from_numpy(noise(8))
    params = aug.sample_params(8, torch.Generator().manual_seed(0))
    on_cpu = aug.apply(x, params, torch.Generator())
    g_cuda = torch.Generator(device="cuda").manual_seed(0)
    on_cuda = aug.apply(x.cuda(), params, g_cuda)
    assert on_cuda.device.type == "cuda" and on_cuda.dtype == x.dtype
    torch.testing.assert_close(on_cuda.cpu(), on_cpu, atol=1e-4, rtol=1e-3)
    full = BatchedAugment(all_on(), SR)(x.cuda(), g_cuda)  # draws on the device
    assert torch.isfinite(full).all() and full.shape == x.shape


@pytest.mark.parametrize(("irs", "most"), [(3, 3), (0, 12)])
def test_batched_reverb_shares_irs_per_batch_and_keeps_each_decay(irs: int, most: int) -> None:
    x = np.zeros((12, SR), np.float32)
    x[:, 100] = 1.0
    cfg = only("reverb", min_rt60_s=0.1, max_rt60_s=0.9, min_wet=1.0, max_wet=1.0)
    cfg.reverb.irs_per_batch = irs
    aug = BatchedAugment(cfg, SR)
    g = torch.Generator().manual_seed(0)
    params = aug.sample_params(12, g)
    y = aug.apply(torch.from_numpy(x), params, g).numpy()
    distinct = {tuple(np.round(row[100:400], 6)) for row in y}
    assert len(distinct) <= most and (irs == 0) == (len(distinct) == 12)
    rt60 = params["reverb.rt60_s"].numpy()
    for row, t in zip(y, rt60, strict=True):  # energy decays 60 dB over the row's rt60
        env = np.convolve(row[100:] ** 2, np.ones(160) / 160, mode="valid")
        slope = np.polyfit(
            np.arange(int(0.8 * t * SR)) / SR, 10 * np.log10(env[: int(0.8 * t * SR)]), 1
        )[0]
        assert slope == pytest.approx(-60 / t, rel=0.15)


def test_batched_view_does_not_depend_on_the_rest_of_the_batch() -> None:
    """A shifted example without echoes, alone and next to one with echoes (FFT sizes come from
    the config, not from what the batch happens to draw)."""
    cfg = deterministic_apply_config()
    cfg.delay.p = 0.3
    aug = BatchedAugment(cfg, SR)
    x = torch.from_numpy(noise(2))
    params = aug.sample_params(2, torch.Generator().manual_seed(0))
    params["delay.active"] = torch.tensor([False, True])
    params["pitch.semitones"] = torch.tensor([5.0, -3.0])
    g = torch.Generator()
    together = aug.apply(x, params, g)
    alone = aug.apply(x[:1], {k: v[:1] for k, v in params.items()}, g)
    torch.testing.assert_close(alone[0], together[0], atol=1e-6, rtol=0)
