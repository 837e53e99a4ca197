"""Exported encoders reload with identical embeddings; versions and damage are refused."""

from __future__ import annotations

import pytest
import torch

from audioclr.errors import CheckpointError
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import FORMAT_VERSION, load_encoder, save_encoder, weights_id


def trained_like(tmp_path):
    torch.manual_seed(1)
    enc = build_encoder("melcnn", 8000, widths=[4, 8], n_mels=8, n_fft=256, hop_length=128)
    enc.train()
    enc(torch.randn(4, enc.input_samples))  # non-default BN statistics
    return enc.eval(), save_encoder(enc, tmp_path / "enc.pt", {"seed": 3})


def test_reload_gives_identical_embeddings_and_metadata(tmp_path):
    enc, path = trained_like(tmp_path)
    raw = torch.load(path, weights_only=True)  # plain types + tensors only
    loaded = load_encoder(path)
    x = torch.randn(3, enc.input_samples * 2)
    with torch.no_grad():
        assert torch.equal(loaded.encoder(x), enc(x))
        for name in loaded.layer_names:
            assert torch.equal(loaded.encoder.features(x)[name], enc.features(x)[name])
    assert not loaded.encoder.training
    assert (loaded.sample_rate, loaded.input_samples) == (8000, enc.input_samples)
    assert loaded.layer_names == ["block1", "block2", "embedding"]
    assert loaded.config == {"seed": 3}
    assert loaded.encoder_id == raw["encoder_id"] == weights_id(enc.state_dict())
    assert len(loaded.encoder_id) == 16


def test_random_init_seed_is_reproducible_and_different(tmp_path):
    enc, path = trained_like(tmp_path)
    a = load_encoder(path, random_init_seed=7)
    b = load_encoder(path, random_init_seed=7)
    c = load_encoder(path, random_init_seed=8)
    assert a.encoder_id == b.encoder_id != c.encoder_id
    assert a.encoder_id != load_encoder(path).encoder_id
    state_a, state_b = a.encoder.state_dict(), b.encoder.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_version_mismatch_and_damage_are_refused(tmp_path):
    _, path = trained_like(tmp_path)
    data = torch.load(path, weights_only=True)
    data["format_version"] = FORMAT_VERSION + 1
    torch.save(data, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match=f"version {FORMAT_VERSION + 1}"):
        load_encoder(tmp_path / "new.pt")
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cut.pt"):
        load_encoder(tmp_path / "cut.pt")
    data["format_version"] = FORMAT_VERSION
    key = next(k for k in data["state_dict"] if k.endswith("weight"))
    data["state_dict"][key] = data["state_dict"][key] + 1
    torch.save(data, tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match="encoder_id"):
        load_encoder(tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match="missing.pt"):
        load_encoder(tmp_path / "missing.pt")
