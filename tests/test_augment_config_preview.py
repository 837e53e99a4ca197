"""AugmentConfig validation and YAML files, SpecAugment masks, and the augment-preview command."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import tone, write_audio

from audioclr.augment.batched import SpecAugment
from audioclr.augment.config import AugmentConfig, FreqMaskConfig, TimeMaskConfig
from audioclr.cli import main
from audioclr.config import CONFIG_ROOT, load_config
from audioclr.errors import ConfigError


def test_clmr_yaml_is_the_defaults() -> None:
    assert load_config(AugmentConfig, CONFIG_ROOT / "augment" / "clmr.yaml") == AugmentConfig()
    melcnn = load_config(AugmentConfig, CONFIG_ROOT / "augment" / "melcnn.yaml")
    assert melcnn.time_mask.p > 0 and melcnn.freq_mask.p > 0 and melcnn.background.p > 0


@pytest.mark.parametrize(
    "override, key",
    [
        ("gain.min_gain_db=0", "augment.gain.min_gain_db"),
        ("pitch.p=1.5", "augment.pitch.p"),
        ("filter.rolloff_db_per_octave=20", "augment.filter.rolloff_db_per_octave"),
        ("delay.max_volume=2", "augment.delay.max_volume"),
        ("reverb.min_rt60_s=0", "augment.reverb.min_rt60_s"),
    ],
)
def test_bad_values_name_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(AugmentConfig, None, [override])
    assert key in str(info.value)


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown config key"):
        load_config(AugmentConfig, None, ["pitch.max_semitone=3"])


def test_specaugment_masks_within_bounds_and_seeded() -> None:
    spec = torch.rand(16, 40, 100) + 1.0  # never 0 before masking
    sa = SpecAugment(
        TimeMaskConfig(p=1.0, max_frames=10, masks=2, fill="zero"),
        FreqMaskConfig(p=1.0, max_mels=6, masks=1, fill="zero"),
    )
    out = sa(spec, torch.Generator().manual_seed(0))
    assert out.shape == spec.shape
    zero = out == 0
    time_cols = zero.all(dim=1)  # (batch, frames) fully masked frames
    freq_rows = zero.all(dim=2)  # (batch, mels) fully masked mels
    assert torch.all(time_cols.sum(1) <= 20) and torch.all(freq_rows.sum(1) <= 6)
    assert time_cols.any() and freq_rows.any()
    # every zero lies in a masked row or column; everything else is untouched
    assert torch.equal(zero, time_cols[:, None, :] | freq_rows[:, :, None])
    assert torch.equal(out[~zero], spec[~zero])
    assert torch.equal(out, sa(spec, torch.Generator().manual_seed(0)))
    off = SpecAugment(TimeMaskConfig(p=0.0), FreqMaskConfig(p=0.0))
    assert torch.equal(off(spec, torch.Generator().manual_seed(0)), spec)


def test_preview_writes_views_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sr = 16000
    audio = write_audio(tmp_path / "clip.wav", tone(440, sr, 2.0), sr)
    rc = main(
        [
            "augment-preview",
            str(audio),
            str(tmp_path / "out"),
            "--views",
            "3",
            "--seconds",
            "1",
            "--seed",
            "4",
            "pitch.p=1",
            "pitch.min_semitones=5",
            "pitch.max_semitones=5",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert printed.count("pitch(+5.0 st)") == 3
    png = tmp_path / "out" / "views.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for i in range(3):
        y, rate = sf.read(str(tmp_path / "out" / f"view_{i:02d}.wav"), dtype="float32")
        assert rate == sr and len(y) == sr
        spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
        assert abs(12 * math.log2(np.argmax(spec) * sr / len(y) / 440) - 5) < 0.3
    original, _ = sf.read(str(tmp_path / "out" / "original.wav"), dtype="float32")
    np.testing.assert_allclose(original, tone(440, sr, 1.0), atol=1e-4)  # 16-bit source


def test_preview_missing_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["augment-preview", str(tmp_path / "none.wav"), str(tmp_path / "out")]) == 2
    assert "none.wav" in capsys.readouterr().err


def test_specaugment_mean_fill_uses_each_examples_mean() -> None:
    spec = torch.rand(4, 20, 50) + torch.arange(4.0)[:, None, None] * 10
    sa = SpecAugment(TimeMaskConfig(p=1.0, max_frames=15, masks=1), FreqMaskConfig(p=0.0))
    out = sa(spec, torch.Generator().manual_seed(1))
    changed = out != spec
    assert changed.any()
    for i in range(4):
        assert torch.allclose(out[i][changed[i]], spec[i].mean())
    with pytest.raises(ConfigError, match="augment.time_mask.fill"):
        load_config(AugmentConfig, None, ["time_mask.fill=noise"])
