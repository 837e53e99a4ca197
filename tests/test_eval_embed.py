"""Frozen embedding: windows, batching, layers, track averaging, resume, data sources."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tone, write_audio

from audioclr.errors import ConfigError, SampleRateMismatch
from audioclr.evaluate.embed import (
    embed_track_list,
    embed_tracks,
    embed_waveform,
    embed_windows,
    layer_dim,
)
from audioclr.evaluate.store import load_embeddings
from audioclr.evaluate.tracks import Track
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import LoadedEncoder

SR = 8000
WIDTHS = [8, 16]


def _loaded(input_samples: int = 1000) -> LoadedEncoder:
    torch.manual_seed(0)
    enc = build_encoder(
        "melcnn",
        SR,
        widths=WIDTHS,
        n_fft=256,
        hop_length=128,
        n_mels=16,
        input_samples=input_samples,
    ).eval()
    return LoadedEncoder(enc, SR, enc.input_samples, list(enc.layer_names), {}, "test-encoder")


def _alone(loaded: LoadedEncoder, w: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return loaded.encoder(torch.from_numpy(w)[None]).numpy()[0]


def test_all_layer_size_is_twice_the_sum_of_intermediate_channels(rng):
    loaded = _loaded()
    x = rng.normal(0, 0.1, 2500).astype(np.float32)
    dim = embed_waveform(loaded, x, layer="all").shape[0]
    assert layer_dim(loaded, "all") == 2 * sum(WIDTHS) == dim  # mean and std per channel
    assert embed_waveform(loaded, x, layer="block1").shape == (2 * WIDTHS[0],)
    from audioclr.evaluate.frozen import layer_slices

    assert layer_slices(loaded) == {
        "block1": slice(0, 2 * WIDTHS[0]),
        "block2": slice(2 * WIDTHS[0], 2 * sum(WIDTHS)),
    }
    assert embed_waveform(loaded, x, layer="last").shape == (WIDTHS[-1],)
    with pytest.raises(ConfigError, match="unknown layer"):
        embed_waveform(loaded, x, layer="nope")


def test_all_layers_are_channel_means_and_stds_over_time(rng):
    loaded = _loaded()
    x = rng.normal(0, 0.1, 1000).astype(np.float32)
    with torch.no_grad():
        feats = loaded.encoder.features(torch.from_numpy(x)[None])
    expect = []
    for n in ("block1", "block2"):
        m = feats[n][0].numpy().mean(axis=1)  # (channels, freq, time) -> (channels, time)
        expect += [m.mean(axis=1), m.std(axis=1)]
    expect = np.concatenate(expect)
    # the std part carries what the mean alone lost: a constant map has std 0 and no other
    assert expect[WIDTHS[0] : 2 * WIDTHS[0]].max() > 0
    np.testing.assert_allclose(embed_waveform(loaded, x, layer="all"), expect, rtol=1e-5, atol=1e-6)


def test_batched_windows_equal_each_window_alone(rng):
    loaded, win, hop = _loaded(), 1000, 400
    a = rng.normal(0, 0.1, 2300).astype(np.float32)  # starts 0,400,800,1200 + end-aligned 1300
    b = rng.normal(0, 0.1, 1000).astype(np.float32)  # exactly one window
    c = rng.normal(0, 0.1, 200).astype(np.float32)  # shorter than min_samples: padded
    out = embed_windows(loaded, [a, b, c], hop_samples=hop, batch_size=3)
    starts = [0, 400, 800, 1200, 1300]
    assert (
        out[0].shape == (len(starts), WIDTHS[-1]) and out[1].shape[0] == 1 and out[2].shape[0] == 1
    )
    for k, s in enumerate(starts):
        np.testing.assert_allclose(out[0][k], _alone(loaded, a[s : s + win]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[1][0], _alone(loaded, b), rtol=1e-4, atol=1e-5)
    padded = np.pad(c, (0, loaded.encoder.min_samples - len(c)))
    np.testing.assert_allclose(out[2][0], _alone(loaded, padded), rtol=1e-4, atol=1e-5)


def test_track_vector_is_mean_of_window_vectors(rng, tmp_path):
    loaded = _loaded()
    xs = [rng.normal(0, 0.1, n).astype(np.float32) for n in (3000, 1700, 900)]
    tracks = [Track(f"t{i}", f"/src/t{i}.wav", (lambda x=x: x)) for i, x in enumerate(xs)]
    emb = embed_track_list(
        loaded, tracks, tmp_path / "emb", hop_seconds=0.05, keep_windows=True, progress=False
    )
    windows = load_embeddings(tmp_path / "emb" / "windows")
    owner = np.asarray(windows.meta["track_index"])
    for i, x in enumerate(xs):
        np.testing.assert_allclose(
            emb.vectors[i], windows.vectors[owner == i].mean(0), rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(
            emb.vectors[i], embed_waveform(loaded, x, hop_samples=400), rtol=1e-4, atol=1e-5
        )
    assert np.bincount(owner).tolist() == [
        6,
        3,
        1,
    ]  # 3000: 0..2000 step 400 = 6; 1700: 0,400,700; 900: 1
    assert emb.meta["hop_samples"] == 400 and emb.meta["encoder_id"] == "test-encoder"


def test_resumed_embed_skips_finished_tracks(rng, tmp_path):
    loaded = _loaded()
    xs = [rng.normal(0, 0.1, 1200).astype(np.float32) for _ in range(7)]
    reads: list[int] = []
    fail_at = {5}

    def reader(i: int):
        def read() -> np.ndarray:
            if i in fail_at:
                raise KeyboardInterrupt
            reads.append(i)
            return xs[i]

        return read

    tracks = [Track(f"t{i}", f"/src/t{i}", reader(i)) for i in range(7)]
    with pytest.raises(KeyboardInterrupt):
        embed_track_list(loaded, tracks, tmp_path, chunk_size=2, progress=False)
    assert reads == [0, 1, 2, 3, 4]
    reads.clear()
    fail_at.clear()
    emb = embed_track_list(loaded, tracks, tmp_path, chunk_size=2, progress=False)
    assert reads == [4, 5, 6]  # chunks [0,1] and [2,3] were finished and are not recomputed
    for i in (0, 3, 6):
        np.testing.assert_allclose(
            emb.vectors[i], embed_waveform(loaded, xs[i]), rtol=1e-4, atol=1e-5
        )
    reads.clear()
    embed_track_list(loaded, tracks, tmp_path, layer="all", chunk_size=2, progress=False)
    assert reads == list(range(7))  # other settings: nothing reused


def test_embed_folder_resamples_and_cache_rate_is_checked(tmp_path):
    loaded = _loaded()
    write_audio(tmp_path / "audio" / "a" / "x.wav", tone(440, 16000, 0.5), 16000)
    write_audio(tmp_path / "audio" / "b" / "y.wav", tone(880, SR, 0.3), SR)
    emb = embed_tracks(loaded, tmp_path / "audio", tmp_path / "emb", progress=False)
    assert emb.ids == ["a/x.wav", "b/y.wav"]
    back = load_embeddings(tmp_path / "emb")
    np.testing.assert_allclose(
        back.vectors[0], embed_waveform(loaded, tone(440, SR, 0.5)), rtol=0.02, atol=0.01
    )
    assert back.meta["sample_rate"] == SR and back.meta["layer"] == "last"
    from audioclr.data.prepare import prepare_cache

    prepare_cache(
        tmp_path / "audio", tmp_path / "cache", sample_rate=16000, min_duration=0.1, progress=False
    )
    with pytest.raises(SampleRateMismatch, match="16000"):
        embed_tracks(loaded, tmp_path / "cache", tmp_path / "emb2", progress=False)


def test_fused_copy_follows_weight_changes_and_leaves_encoder_alone(rng):
    loaded = _loaded()
    x = rng.normal(0, 0.1, 1000).astype(np.float32)
    before = embed_waveform(loaded, x)
    assert any(
        isinstance(m, torch.nn.BatchNorm2d) for m in loaded.encoder.modules()
    )  # original not fused
    with torch.no_grad():
        for m in loaded.encoder.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.add_(0.5)
    after = embed_waveform(loaded, x)
    assert not np.allclose(before, after, atol=1e-3)
    np.testing.assert_allclose(after, _alone(loaded, x), rtol=1e-4, atol=1e-5)
