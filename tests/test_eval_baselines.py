"""MFCC-statistics baseline vs an independent numpy MFCC (HTK mels, dB, ortho DCT-II, deltas)."""

from __future__ import annotations

import numpy as np
from conftest import tone, write_audio

from audioclr.evaluate.baselines import mfcc_embed_tracks, mfcc_stats
from audioclr.evaluate.store import load_embeddings

SR, N_FFT, HOP, N_MELS, N_MFCC = 22050, 2048, 512, 128, 20


def _mel_fbank() -> np.ndarray:
    """(freqs, mels) triangular HTK filters without area normalisation."""
    freqs = np.linspace(0, SR // 2, N_FFT // 2 + 1)
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    pts = 700 * (10 ** (np.linspace(mel(0), mel(SR / 2), N_MELS + 2) / 2595) - 1)
    fb = np.zeros((len(freqs), N_MELS))
    for m in range(N_MELS):
        lo, mid, hi = pts[m], pts[m + 1], pts[m + 2]
        fb[:, m] = np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    return fb


def _numpy_mfcc(x: np.ndarray) -> np.ndarray:
    """(samples,) -> (N_MFCC, frames)."""
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    frames = np.stack(
        [padded[s : s + N_FFT] * window for s in range(0, len(padded) - N_FFT + 1, HOP)]
    )
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, freqs)
    db = 10 * np.log10(np.maximum(power @ _mel_fbank(), 1e-10))
    db = np.maximum(db, db.max() - 80.0)
    n, k = np.arange(N_MELS), np.arange(N_MFCC)[:, None]
    dct = np.cos(np.pi / N_MELS * (n + 0.5) * k) * np.sqrt(2.0 / N_MELS)
    dct[0] *= 1 / np.sqrt(2)
    return dct @ db.T


def _deltas(c: np.ndarray) -> np.ndarray:
    p = np.pad(c, ((0, 0), (2, 2)), mode="edge")
    t = c.shape[1]
    return (1 * (p[:, 3 : 3 + t] - p[:, 1 : 1 + t]) + 2 * (p[:, 4 : 4 + t] - p[:, 0:t])) / 10.0


def test_mfcc_stats_match_numpy_on_a_tone():
    x = tone(440, SR, 1.0) + tone(1320, SR, 1.0, amplitude=0.1) * np.linspace(
        0, 1, SR, dtype=np.float32
    )
    c = _numpy_mfcc(x)
    d = _deltas(c)
    expect = np.concatenate([c.mean(1), c.std(1), d.mean(1), d.std(1)])
    got = mfcc_stats(x, SR)
    assert got.shape == (4 * N_MFCC,) == expect.shape
    np.testing.assert_allclose(got, expect, rtol=1e-3, atol=2e-2)
    assert (
        np.abs(got[40:60]).max() < 0.01 * np.abs(got[:20]).max()
    )  # a steady tone: deltas average ~0


def test_mfcc_tracks_from_a_folder(tmp_path):
    write_audio(tmp_path / "a" / "low.wav", tone(220, SR, 0.5), SR)
    write_audio(tmp_path / "a" / "high.wav", tone(3000, SR, 0.5), SR)
    emb = mfcc_embed_tracks(tmp_path / "a", tmp_path / "emb", SR, progress=False)
    back = load_embeddings(tmp_path / "emb")
    assert back.ids == ["high.wav", "low.wav"] and back.dim == 80
    np.testing.assert_allclose(
        back.vectors[1], mfcc_stats(tone(220, SR, 0.5), SR), rtol=1e-3, atol=0.1
    )  # 16-bit file
    assert not np.allclose(emb.vectors[0], emb.vectors[1], atol=1.0)


def test_supervised_baseline_learns_and_leaves_the_given_encoder_alone(rng):
    import torch

    from audioclr.evaluate.supervised import train_supervised
    from audioclr.ssl.encoders import build_encoder
    from audioclr.ssl.export import LoadedEncoder, weights_id

    sr = 8000
    torch.manual_seed(0)
    enc = build_encoder(
        "melcnn", sr, widths=[8, 16], n_fft=256, hop_length=128, n_mels=16, input_samples=2000
    )
    loaded = LoadedEncoder(
        enc, sr, enc.input_samples, enc.layer_names, {}, weights_id(enc.state_dict())
    )
    freqs = [300.0, 1200.0, 3000.0]
    y = np.repeat(np.arange(3), 6)
    waves = [
        tone(freqs[c], sr, 0.6) + rng.normal(0, 0.05, int(0.6 * sr)).astype(np.float32) for c in y
    ]
    kw = dict(batch_size=6, lr=1e-2, device="cpu", progress=False)
    trained, losses = train_supervised(loaded, waves, y, False, 3, epochs=15, **kw)
    short_a, _ = train_supervised(loaded, waves, y, False, 3, epochs=2, **kw)
    short_b, _ = train_supervised(loaded, waves, y, False, 3, epochs=2, **kw)
    assert losses[-1] < 0.5 * losses[0] and losses[0] > 0.8  # starts near log(3) = 1.1, falls
    assert short_a.encoder_id == short_b.encoder_id != loaded.encoder_id  # seeded; a new encoder
    assert (
        weights_id(loaded.encoder.state_dict()) == loaded.encoder_id
    )  # the given one is untouched
    assert not trained.encoder.training
