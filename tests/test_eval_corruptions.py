"""Corruptions: each measured on the signal it returns (SNR, codec round trip, FFT attenuation)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tone

from audioclr.errors import ConfigError
from audioclr.evaluate.corruptions import (
    _round_trip,
    corrupt,
    mp3_level,
    parse_corruption,
    track_rng,
)

SR = 16000


def _run(spec: str, x: np.ndarray, seed: int = 0, track: int = 0, window: int = 4000) -> np.ndarray:
    c = parse_corruption(spec)
    return corrupt(x, c, SR, window, track_rng(seed, c, track))


def _db(p: float) -> float:
    return 10 * np.log10(p)


@pytest.mark.parametrize("snr", [20.0, 10.0, 0.0])
def test_noise_is_at_the_requested_snr(snr):
    x = tone(440, SR, 1.0)
    y = _run(f"noise:{snr:g}", x)
    measured = _db(np.mean(x.astype(np.float64) ** 2) / np.mean((y - x).astype(np.float64) ** 2))
    assert abs(measured - snr) < 0.5
    assert np.array_equal(y, _run(f"noise:{snr:g}", x))  # deterministic per seed and track
    assert not np.array_equal(y, _run(f"noise:{snr:g}", x, seed=1))
    assert not np.array_equal(y, _run(f"noise:{snr:g}", x, track=1))


@pytest.mark.parametrize("spec", ["mp3:32", "ogg:32"])
def test_codec_round_trip_changes_the_signal_and_keeps_length_and_rate(spec):
    x = tone(440, SR, 1.3) + 0.02 * np.random.default_rng(0).standard_normal(int(1.3 * SR))
    x = x.astype(np.float32)
    y = _run(spec, x)
    assert y.shape == x.shape and y.dtype == np.float32
    err = np.sqrt(np.mean((y - x) ** 2) / np.mean(x**2))
    assert 1e-3 < err < 0.5  # lossy, but the same audio, aligned in time
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * SR / len(y) - 440) < 2  # same rate: the tone stays at 440 Hz


def test_mp3_level_gives_the_requested_constant_bitrate():
    x = tone(440, SR, 4.0)
    _, size = _round_trip(
        x, SR, "MP3", "MPEG_LAYER_III", mp3_level(32, SR), bitrate_mode="CONSTANT"
    )
    assert abs(size * 8 / 4.0 / 1000 - 32) < 2  # kbps from the file size (headers ~1 %)


def test_lowpass_attenuation_from_the_fft():
    x = np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32)
    y = _run("lowpass:2000", x)
    f = np.fft.rfftfreq(len(x), 1 / SR)
    px, py = np.abs(np.fft.rfft(x)) ** 2, np.abs(np.fft.rfft(y)) ** 2
    passband, stopband = f < 1000, f > 4000
    assert abs(_db(py[passband].sum() / px[passband].sum())) < 1.0
    assert _db(py[stopband].sum() / px[stopband].sum()) < -40


def test_gain_reverb_and_shift():
    x = tone(440, SR, 1.0)
    np.testing.assert_allclose(_run("gain:-20", x), x * 0.1, rtol=1e-6)
    np.testing.assert_array_equal(_run("shift:0.5", x, window=4000), np.roll(x, 2000))
    wet = _run("reverb:0.8", x)
    assert wet.shape == x.shape and not np.allclose(wet, x, atol=0.05)
    tail = np.abs(_run("reverb:0.8", np.r_[x[:1600], np.zeros(SR - 1600, np.float32)]))
    assert tail[8000:].max() > 1e-3  # energy 0.4 s after the sound stopped: a room's decay


def test_bad_specs_are_config_errors_naming_the_key():
    with pytest.raises(ConfigError, match="unknown corruption 'hiss:3'"):
        parse_corruption("hiss:3", "tasks[t].corruptions")
    with pytest.raises(ConfigError, match="numeric level"):
        parse_corruption("noise:loud")
    with pytest.raises(ConfigError, match="level > 0"):
        parse_corruption("mp3:0")
    assert str(parse_corruption("gain:-20")) == "gain:-20"
