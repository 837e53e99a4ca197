"""Encoders: documented layer shapes, longer inputs, batch-independent eval, registry errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audioclr.errors import ConfigError
from audioclr.ssl.encoders import ENCODERS, build_encoder

TINY = {
    "melcnn": dict(widths=[4, 8, 16], n_mels=16, n_fft=256, hop_length=128),
    "samplecnn": dict(strides=[3, 3, 3, 3], widths=[4, 4, 8, 8], final_width=16),
}


def tiny(name: str, sr: int = 8000):
    torch.manual_seed(0)
    return build_encoder(name, sr, **TINY[name])


def test_samplecnn_clmr_defaults_match_paper_shapes():
    enc = build_encoder("samplecnn", 22050).eval()
    assert enc.min_samples == 3**10 == 59049 and enc.output_dim == 512
    x = torch.zeros(1, 59049)
    with torch.no_grad():
        feats = enc.features(x)
    assert list(feats) == enc.layer_names
    # each block divides time by 3: conv0 -> 3^9 frames, block9 -> 1 frame
    assert feats["conv0"].shape == (1, 128, 3**9)
    for i in range(1, 10):
        assert feats[f"block{i}"].shape[-1] == 3 ** (9 - i)
    assert feats["block9"].shape == (1, 512, 1) and feats["embedding"].shape == (1, 512)


def test_melcnn_layer_shapes_follow_hop_and_pooling():
    enc = tiny("melcnn")
    n = 8000
    frames = 1 + n // 128  # torchaudio center=True framing
    feats = enc.features(torch.randn(2, n))
    assert [tuple(v.shape) for v in feats.values()] == [
        (2, 4, 8, frames // 2),
        (2, 8, 4, frames // 4),
        (2, 16, 2, frames // 8),
        (2, 16),
    ]
    assert enc.frames(torch.randn(2, n)).shape == (2, 16, frames // 8)


def test_logmel_frontend_peaks_at_tone_frequency():
    enc = build_encoder("melcnn", 16000, n_mels=64, n_fft=1024, hop_length=256)
    t = np.arange(16000) / 16000
    x = torch.tensor(np.sin(2 * np.pi * 1000 * t), dtype=torch.float32)[None]
    spec = enc.frontend(x)[0].mean(dim=1)  # (mels,)
    fb = enc.frontend.mel.mel_scale.fb  # (freq bins, mels); the buffer an export carries
    assert "frontend.mel.mel_scale.fb" in enc.state_dict()
    bin_1k = round(1000 * 1024 / 16000)
    assert int(spec.argmax()) == int(fb[bin_1k].argmax())


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_longer_inputs_and_minimum(name):
    enc = tiny(name).eval()
    m = enc.min_samples
    with torch.no_grad():
        assert enc(torch.randn(2, m)).shape == (2, enc.output_dim)
        assert enc(torch.randn(2, 5 * m + 7)).shape == (2, enc.output_dim)
    with pytest.raises(ValueError, match="min_samples"):
        enc(torch.randn(2, m - 1))


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_eval_embeddings_do_not_depend_on_the_batch(name):
    enc = tiny(name)
    enc.train()
    enc(torch.randn(8, enc.input_samples))  # move BN running stats off their init
    enc.eval()
    x = torch.randn(5, enc.input_samples)
    with torch.no_grad():
        whole = enc(x)
        alone = torch.cat([enc(x[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(whole, alone, rtol=1e-4, atol=1e-5)


def test_registry_errors_name_the_choices_and_key():
    with pytest.raises(ConfigError) as err:
        build_encoder("resnet", 22050)
    assert "melcnn" in err.value.hint and "samplecnn" in err.value.hint
    with pytest.raises(ConfigError, match="bogus"):
        build_encoder("melcnn", 22050, bogus=1)
    with pytest.raises(ConfigError, match="time_strides"):
        build_encoder("melcnn", 22050, widths=[8, 16], time_strides=[2])
    with pytest.raises(ConfigError, match="n_mels"):
        build_encoder("melcnn", 22050, widths=[8, 8, 8, 8, 8], n_mels=16)
    with pytest.raises(ConfigError, match="input_samples"):
        build_encoder("samplecnn", 22050, input_samples=100)


def test_melcnn_freq_bands_keep_each_band_of_the_last_map():
    torch.manual_seed(0)
    enc = build_encoder("melcnn", 8000, **{**TINY["melcnn"], "freq_bands": 2}).eval()
    x = torch.randn(3, 8000)
    last = enc.features(x)["block3"]  # (3, 16, 2 frequency bins, frames)
    # channel-major: channel c's low band, then its high band
    expected = torch.stack([last[:, :, 0].mean(-1), last[:, :, 1].mean(-1)], 2).flatten(1)
    assert enc.output_dim == 32
    torch.testing.assert_close(enc(x), expected)
    one = build_encoder("melcnn", 8000, **TINY["melcnn"]).eval()
    one.load_state_dict(enc.state_dict())  # same weights, one band: the plain mean over both
    torch.testing.assert_close(one(x), last.mean(dim=(2, 3)))
    for bad in (0, 3, 1.5):
        with pytest.raises(ConfigError, match="freq_bands"):
            build_encoder("melcnn", 8000, **{**TINY["melcnn"], "freq_bands": bad})
