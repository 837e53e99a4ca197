"""Decoding: resampling keeps frequency (FFT peak), downmix is the channel mean, block decoding."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from conftest import tone, write_audio

from audioclr.data import decode
from audioclr.data.decode import decode_audio, downmix, resample
from audioclr.errors import AudioReadError


def peak_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1.0 / sr)[np.argmax(spec)])


@pytest.mark.parametrize("orig_sr", [44100, 16000])
def test_tone_keeps_frequency_through_resampling(orig_sr: int) -> None:
    y = resample(tone(440.0, orig_sr, 1.0), orig_sr, 22050)
    assert y.dtype == np.float32
    assert abs(len(y) - 22050) <= 1
    assert abs(peak_hz(y, 22050) - 440.0) <= 1.0  # bin width is 1 Hz for 1 s
    assert np.sqrt(np.mean(y[1000:-1000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


@pytest.mark.parametrize("orig_sr", [44100, 16000])
def test_decoded_file_keeps_frequency(tmp_path, orig_sr: int) -> None:
    path = write_audio(tmp_path / "a.flac", tone(440.0, orig_sr, 1.0), orig_sr)
    y = decode_audio(path, 22050)
    assert abs(peak_hz(y, 22050) - 440.0) <= 1.0


def test_stereo_downmix_is_channel_mean(tmp_path, rng) -> None:
    x = rng.uniform(-0.5, 0.5, (1000, 2)).astype(np.float32)
    np.testing.assert_allclose(downmix(x), x.mean(axis=1), atol=1e-7)
    assert downmix(x[:, :1]).shape == (1000,)
    path = write_audio(tmp_path / "s.wav", x, 22050, subtype="FLOAT")
    np.testing.assert_allclose(decode_audio(path, 22050), x.mean(axis=1), atol=1e-7)


def test_block_decoding_matches_one_shot(tmp_path, monkeypatch, rng) -> None:
    x = rng.uniform(-0.5, 0.5, (44100 * 2, 2)).astype(np.float32)
    path = write_audio(tmp_path / "long.wav", x, 44100, subtype="FLOAT")
    monkeypatch.setattr(decode, "BLOCK_FRAMES", 10000)  # force the streaming path
    y = decode_audio(path, 22050)
    ref = soxr.resample(x.mean(axis=1), 44100, 22050, quality="HQ")
    assert len(y) == len(ref)
    np.testing.assert_allclose(y, ref, atol=1e-4)


def test_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(AudioReadError, match="nothere.wav"):
        decode_audio(tmp_path / "nothere.wav", 22050)
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"not audio at all" * 50)
    with pytest.raises(AudioReadError, match="bad.flac.*corrupt"):
        decode_audio(bad, 22050)
