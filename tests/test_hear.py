"""audioclr.hear against the HEAR 2021 API rules: attributes, shapes, dtypes, timestamps in ms
(evenly spaced, centred on their windows, equal for every sound), batch independence,
determinism, a 10 ms and a 20-minute sound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tone

import audioclr.hear as hear
from audioclr.errors import ConfigError
from audioclr.evaluate.embed import embed_waveform
from audioclr.evaluate.frozen import layer_vectors
from audioclr.evaluate.hear_model import hear_rate
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import load_encoder, save_encoder

SMALL = dict(widths=[8, 16], n_fft=256, hop_length=128, n_mels=16)


def _export(path: Path, rate: int, input_samples: int) -> str:
    torch.manual_seed(5)
    enc = build_encoder("melcnn", rate, input_samples=input_samples, **SMALL)
    return str(save_encoder(enc.eval(), path, {}))


@pytest.fixture(scope="module")
def enc16(tmp_path_factory) -> str:
    """An encoder at a HEAR rate (fed as it is): 16 kHz, 0.25 s windows."""
    return _export(tmp_path_factory.mktemp("hear") / "enc16.pt", 16000, 4000)


@pytest.fixture(scope="module")
def enc8(tmp_path_factory) -> str:
    """An encoder at 8 kHz: the model reports 16 kHz and resamples inside."""
    return _export(tmp_path_factory.mktemp("hear") / "enc8.pt", 8000, 2000)


def _sounds(n: int, samples: int, seed: int = 0) -> torch.Tensor:
    g = np.random.default_rng(seed)
    x = [tone(200 * (i + 1), 16000, samples / 16000) + g.normal(0, 0.05, samples) for i in range(n)]
    return torch.from_numpy(np.stack(x).astype(np.float32)).clamp(-1, 1)


def test_attributes_and_the_sample_rate_choice(enc16, enc8):
    assert [hear_rate(r) for r in (8000, 16000, 22050, 24000, 44100, 96000)] == [
        16000,
        16000,
        22050,
        44100,
        44100,
        48000,
    ]
    for path, rate in ((enc16, 16000), (enc8, 16000)):
        model = hear.load_model(path)
        assert isinstance(model, torch.nn.Module) and model.sample_rate == rate
        for attr in ("sample_rate", "scene_embedding_size", "timestamp_embedding_size"):
            assert type(getattr(model, attr)) is int
        assert model.scene_embedding_size == model.timestamp_embedding_size == 2 * (8 + 16)
    assert hear.load_model(enc8).encoder_rate == 8000
    with pytest.raises(ConfigError, match="exported audioclr encoder"):
        hear.load_model("")


def test_shapes_dtypes_and_evenly_spaced_timestamps_in_ms(enc16):
    audio = _sounds(3, 16000 + 123)
    # 16123 samples = 1007.7 ms: 1 + floor(1007.7 / hop_ms) timestamps
    for hop_ms, count in ((50.0, 21), (25.0, 41), (7.3, 139)):
        model = hear.load_model(enc16, timestamp_hop_ms=hop_ms)
        emb, ts = hear.get_timestamp_embeddings(audio, model)
        assert emb.shape == (3, count, model.timestamp_embedding_size)
        assert emb.dtype == torch.float32
        assert ts.shape == (3, count) and ts.dtype == torch.float32
        torch.testing.assert_close(ts[0], torch.arange(count, dtype=torch.float64).float() * hop_ms)
        assert (ts == ts[0]).all()  # the same for every sound of the batch
        scene = hear.get_scene_embeddings(audio, model)
        assert scene.shape == (3, model.scene_embedding_size) and scene.dtype == torch.float32
        assert torch.isfinite(emb).all() and torch.isfinite(scene).all()


def test_each_timestamp_embedding_is_its_centred_window(enc16):
    model = hear.load_model(enc16, timestamp_hop_ms=7.3)  # centres between samples: the nearest
    audio = _sounds(1, 12000, seed=1)
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    loaded = load_encoder(enc16)  # not the fused copy the model runs
    width, x = 8000, audio[0].numpy()  # 500 ms windows at 16 kHz
    for k in (0, 3, 7, len(ts[0]) - 1):
        centre = round(k * 7.3 * 16)  # ms -> the nearest sample
        assert float(ts[0, k]) == pytest.approx(k * 7.3)
        lo, hi = centre - width // 2, centre + width // 2
        window = np.pad(x, (width, width))[lo + width : hi + width]  # zeros beyond the ends
        with torch.no_grad():
            expect = layer_vectors(loaded.encoder, torch.from_numpy(window)[None], "all")[0]
        torch.testing.assert_close(emb[0, k], expect, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("which", ["enc16", "enc8"])
def test_delaying_the_sound_by_one_hop_shifts_the_embeddings_by_one(which, request):
    model = hear.load_model(request.getfixturevalue(which))
    audio = _sounds(1, 9000, seed=2)
    delayed = torch.cat([torch.zeros(1, 800), audio], dim=1)  # 50 ms at 16 kHz
    emb, _ = hear.get_timestamp_embeddings(audio, model)
    later, _ = hear.get_timestamp_embeddings(delayed, model)
    assert later.shape[1] == emb.shape[1] + 1
    torch.testing.assert_close(later[:, 1:], emb, atol=2e-3, rtol=1e-3)


def test_a_sound_does_not_depend_on_its_batch_and_runs_repeat(enc8):
    model = hear.load_model(enc8, batch_size=5)  # batches mix windows of different sounds
    audio = _sounds(3, 7000, seed=3)
    audio[2] = torch.rand(7000) * 2 - 1  # loud noise beside the tones
    alone_ts, _ = hear.get_timestamp_embeddings(audio[1:2], model)
    alone_scene = hear.get_scene_embeddings(audio[1:2], model)
    model.train()  # a harness may do this; the encoder's BatchNorm must stay frozen
    batch_ts, _ = hear.get_timestamp_embeddings(audio, model)
    batch_scene = hear.get_scene_embeddings(audio, model)
    torch.testing.assert_close(batch_ts[1], alone_ts[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batch_scene[1], alone_scene[0], atol=1e-5, rtol=1e-5)
    again_ts, again_ts_ms = hear.get_timestamp_embeddings(audio, model)
    assert torch.equal(again_ts, batch_ts)
    assert torch.equal(hear.get_scene_embeddings(audio, model), batch_scene)


def test_scene_embedding_is_the_embed_command_vector(enc16):
    loaded = load_encoder(enc16)
    model = hear.load_model(enc16)
    for samples in (4000 * 3 + 500, 1000):  # several windows (end-aligned last); shorter than one
        audio = _sounds(1, samples, seed=4)
        expect = embed_waveform(loaded, audio[0].numpy(), layer="all")
        got = hear.get_scene_embeddings(audio, model)[0].numpy()
        np.testing.assert_allclose(got, expect, atol=1e-4, rtol=1e-4)


def test_ten_milliseconds_and_one_sample(enc8):
    model = hear.load_model(enc8)
    for samples in (160, 1):
        audio = _sounds(2, samples, seed=5)
        emb, ts = hear.get_timestamp_embeddings(audio, model)
        assert emb.shape == (2, 1, model.timestamp_embedding_size) and ts.tolist() == [[0.0]] * 2
        scene = hear.get_scene_embeddings(audio, model)
        assert scene.shape == (2, model.scene_embedding_size)
        assert torch.isfinite(emb).all() and torch.isfinite(scene).all()


def test_twenty_minutes_are_embedded_window_batch_by_window_batch(enc8):
    # windows of min_samples (48 ms) keep the test quick; the windowing is the same at any size
    model = hear.load_model(enc8, timestamp_window_ms=10, batch_size=256)
    widest: list[int] = []
    features = model.encoder.features
    model.encoder.features = lambda x, *rest: widest.append(x.numel()) or features(x, *rest)  # type: ignore[method-assign]
    audio = torch.rand(1, 16000 * 60 * 20, generator=torch.Generator().manual_seed(0)) - 0.5
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    scene = hear.get_scene_embeddings(audio, model)
    assert emb.shape == (1, 24001, 48) and ts[0, -1] == 20 * 60 * 1000
    assert scene.shape == (1, 48) and torch.isfinite(emb).all() and torch.isfinite(scene).all()
    # the encoder never sees more than a batch of windows (2000 samples at 8 kHz), not the sound
    assert model.timestamp_window == 384 and len(widest) > 24001 // 256
    assert max(widest) <= 256 * 2000


def test_audio_must_be_on_the_models_device_and_the_model_ours(enc8):
    model = hear.load_model(enc8)
    with pytest.raises(ValueError, match="model is on cpu"):
        hear.get_scene_embeddings(torch.zeros(1, 100, device="meta"), model)
    with pytest.raises(ValueError, match=r"\(n_sounds, n_samples\)"):
        hear.get_timestamp_embeddings(torch.zeros(100), model)
    with pytest.raises(TypeError, match="load_model"):
        hear.get_scene_embeddings(torch.zeros(1, 100), torch.nn.Linear(1, 1))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(enc8):
    model = hear.load_model(enc8)
    audio = _sounds(2, 20000, seed=6)
    cpu_ts, cpu_ms = hear.get_timestamp_embeddings(audio, model)
    cpu_scene = hear.get_scene_embeddings(audio, model)
    model.to("cuda")
    ts, ms = hear.get_timestamp_embeddings(audio.cuda(), model)
    scene = hear.get_scene_embeddings(audio.cuda(), model)
    assert ts.device.type == ms.device.type == scene.device.type == "cuda"
    assert ts.dtype == scene.dtype == torch.float32
    assert torch.equal(ms.cpu(), cpu_ms)
    torch.testing.assert_close(ts.cpu(), cpu_ts, atol=5e-2, rtol=5e-2)  # float16 autocast
    torch.testing.assert_close(scene.cpu(), cpu_scene, atol=5e-2, rtol=5e-2)
