"""Evaluation methods: the registry, a fair random-init (BatchNorm re-estimation, init draws)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tone, write_audio

from audioclr.errors import ConfigError
from audioclr.evaluate.batchnorm import reestimate_batchnorm, reestimated, window_batches
from audioclr.evaluate.embed import embed_windows
from audioclr.evaluate.methods import (
    DEFAULT_METHODS,
    ENCODER,
    METHODS,
    MethodSettings,
    Source,
    TrackSet,
    baselines,
    display_name,
    get_method,
)
from audioclr.evaluate.methods.random_init import fresh_encoder
from audioclr.evaluate.suite import SuiteConfig, TaskConfig, task_tracks
from audioclr.evaluate.tracks import Track
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import LoadedEncoder, save_encoder, weights_id

SR = 8000
SMALL = dict(n_fft=256, hop_length=128, n_mels=16, input_samples=2000)


def _clips(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Tones at five pitches under three noise levels, 1 s at the encoder's rate."""
    out = []
    for i in range(n):
        f = [200, 400, 800, 1600, 3000][i % 5] * (1 + 0.05 * rng.standard_normal())
        noise = rng.normal(0, [0.01, 0.1, 0.3][i % 3], SR)
        out.append((tone(f, SR, 1.0, 0.3) + noise).astype(np.float32))
    return out


def _tracks(waves: list[np.ndarray], reads: list[str] | None = None) -> list[Track]:
    """In-memory tracks; ``reads`` (a spy) records the id of every ``read()``."""

    def reader(i: int, w: np.ndarray):  # noqa: ANN202
        return lambda: (reads.append(f"t{i}") if reads is not None else None) or w

    return [Track(f"t{i}", f"/x/t{i}.wav", reader(i, w)) for i, w in enumerate(waves)]


def _loaded(widths: list[int], seed: int) -> LoadedEncoder:
    torch.manual_seed(seed)
    enc = build_encoder("melcnn", SR, widths=widths, **SMALL).eval()
    wid = weights_id(enc.state_dict())
    return LoadedEncoder(enc, SR, enc.input_samples, enc.layer_names, {}, wid)


def _dead(vectors: np.ndarray) -> int:
    """Embedding dimensions that carry nothing: all zero (after ReLU) or constant across tracks."""
    return int(((np.abs(vectors).max(0) == 0) | (vectors.std(0) < 1e-6)).sum())


def _track_vectors(loaded: LoadedEncoder, waves: list[np.ndarray]) -> np.ndarray:
    return np.stack([w.mean(0) for w in embed_windows(loaded, waves, "last")])


def test_registry_names_roles_and_unknown_names():
    assert list(METHODS) == ["encoder", "random_init", "mfcc", "supervised", "hear"]
    assert DEFAULT_METHODS == ["encoder", "random_init", "mfcc"] and ENCODER == "encoder"
    assert [display_name(m) for m in METHODS][:4] == ["SSL", "random-init", "MFCC", "supervised"]
    assert display_name("hear:pkg.mod") == "HEAR pkg.mod"  # hear takes its module as argument
    assert baselines() == ["random_init", "mfcc", "supervised"]
    assert [m for m, c in METHODS.items() if c.needs_encoder] == ["random_init", "supervised"]
    assert [m for m, c in METHODS.items() if c.needs_labels] == ["supervised"]
    with pytest.raises(ConfigError, match="unknown method 'wav2vec'") as exc:
        get_method("wav2vec")
    assert "random_init" in exc.value.hint and "supervised" in exc.value.hint
    task = TaskConfig(name="t", labels="x.csv")
    with pytest.raises(ConfigError, match="methods.*random_init.*'mfc'"):
        SuiteConfig(tasks=[task], methods=["encoder", "mfc"])


def test_reestimation_turns_dead_units_live(rng):
    waves = _clips(30, rng)
    loaded = _loaded([32, 64, 128], seed=0)
    before = _dead(_track_vectors(loaded, waves))
    fair, info = reestimated(loaded, _tracks(waves[:20]), batch_size=16, device="cpu")
    after = _dead(_track_vectors(fair, waves))
    assert before >= 5 and after == 0, (before, after)  # measured: 9 of 128 dead -> 0
    assert info == {"train_tracks": 20, "windows": 80} and fair.encoder_id != loaded.encoder_id
    assert weights_id(loaded.encoder.state_dict()) == loaded.encoder_id  # the given one untouched
    assert float(loaded.encoder.input_norm.running_mean) == 0.0
    # the input BatchNorm now holds the log-mel statistics of the clips (mean about -4 to -9)
    assert float(fair.encoder.input_norm.running_mean) < -2 and not fair.encoder.training


def test_batches_are_weighted_by_their_windows(rng):
    loaded = _loaded([8, 16], seed=1)
    x = torch.from_numpy(np.stack(_clips(4, rng))[:, :2000])
    uneven = reestimate_batchnorm(loaded.encoder, [x[:3], x[3:]])  # 3 windows, then 1
    with torch.no_grad():
        logmel = loaded.encoder.frontend(x)
    expect = float(logmel.mean())  # every window has the same number of frames
    assert float(uneven.input_norm.running_mean) == pytest.approx(expect, rel=1e-5)
    batches = window_batches(_tracks(_clips(3, rng)), 2000, 1000, 1, 4)  # 7 windows a track
    assert [b.shape for b in batches] == [(4, 2000)] * 5 + [(1, 2000)]
    with pytest.raises(ValueError, match="no windows"):
        reestimate_batchnorm(loaded.encoder, [])


def test_reestimation_reads_only_the_training_tracks(tmp_path, rng):
    waves = _clips(6, rng)
    reads: list[str] = []
    tracks = _tracks(waves, reads)
    enc = save_encoder(_loaded([8, 16], seed=3).encoder, tmp_path / "enc.pt", {})
    data = TrackSet(tracks=tracks, key="spy", train=[tracks[1], tracks[4]])
    _, info = fresh_encoder(Source.open(enc), 0, data, MethodSettings(device="cpu"))
    assert sorted(reads) == ["t1", "t4"] and info["train_tracks"] == 2


def test_task_tracks_train_is_the_training_split(tmp_path, rng):
    rows = []
    for i, w in enumerate(_clips(8, rng)):
        path = write_audio(tmp_path / "a" / f"{i}.wav", w, SR)
        rows.append([str(path), "lo" if i % 2 else "hi", ["train", "test"][i // 4]])
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["path", "label", "split"], *rows])
    from audioclr.data.labels import load_labelled_set

    labelled = load_labelled_set(tmp_path / "labels.csv")
    data = task_tracks(TaskConfig(name="t", labels=str(tmp_path / "labels.csv")), labelled, SR)
    assert [t.id for t in data.train] == ["0.wav", "1.wav", "2.wav", "3.wav"]
    assert len(data.tracks) == 8 and list(data.targets) == [0, 1, 0, 1]  # hi, lo, hi, lo


def _labelled_folder(root: Path, rng: np.random.Generator) -> Path:
    rows = [["path", "label", "split"]]
    for i, w in enumerate(_clips(9, rng)):
        path = write_audio(root / "audio" / f"{i}.wav", w, SR)
        rows.append([str(path), str(i % 3), ["train", "valid", "test"][i // 3 % 3]])
    with open(root / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return root / "labels.csv"


def test_random_init_draws_differ_and_are_reused(tmp_path, rng, monkeypatch):
    labels = _labelled_folder(tmp_path, rng)
    enc = save_encoder(_loaded([16, 32], seed=5).encoder, tmp_path / "enc.pt", {})
    source = Source.open(enc)
    from audioclr.data.labels import load_labelled_set

    data = task_tracks(TaskConfig(name="t", labels=str(labels)), load_labelled_set(labels), SR)
    settings = MethodSettings(device="cpu", seed=4, draws=3, progress=False)
    method = get_method("random_init")
    draws = method.embed(source, data, settings, tmp_path / "emb")
    assert [d.emb.meta["init_seed"] for d in draws] == [4, 5, 6]
    assert [d.folder.name for d in draws] == ["seed-4", "seed-5", "seed-6"]
    assert all(d.emb.meta["bn_reestimation"]["train_tracks"] == 3 for d in draws)
    for a in range(3):
        for b in range(a + 1, 3):
            assert not np.allclose(draws[a].emb.vectors, draws[b].emb.vectors, atol=1e-3)
    import audioclr.evaluate.batchnorm as bn

    monkeypatch.setattr(bn, "reestimated", lambda *a, **k: pytest.fail("recomputed a draw"))
    again = method.embed(source, data, settings, tmp_path / "emb")
    for first, reused in zip(draws, again, strict=True):
        assert np.array_equal(first.emb.vectors, reused.emb.vectors)


def test_retrieval_scores_each_draw_and_reports_the_mean(tmp_path, rng):
    from audioclr.pipelines.bench_retrieval import retrieval_benchmark

    rows = [["path", "label"]]
    for t, f in enumerate([250, 500, 1000, 2000]):
        for j in range(3):
            x = tone(f, SR, 0.5, 0.4) + rng.normal(0, 0.05, SR // 2).astype(np.float32)
            write_audio(tmp_path / "segs" / f"tr{t}" / f"s{j}.wav", x, SR)
            rows.append([f"tr{t}/s{j}.wav", f"tr{t}"])
    with open(tmp_path / "segs" / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    enc = save_encoder(_loaded([8, 16], seed=7).encoder, tmp_path / "enc.pt", {})
    res = retrieval_benchmark(
        tmp_path / "segs" / "labels.csv",
        enc,
        tmp_path / "out",
        ["random_init", "mfcc", "supervised"],
        [1, 2],
        SR,
        device="cpu",
        random_init_draws=2,
    )
    per_draw = res["draws"]["random_init"]
    assert len(per_draw) == 2 and "mfcc" not in res["draws"]
    mean = np.mean([d["2"]["map@2"] for d in per_draw])
    assert res["results"]["random_init"]["2"]["map@2"] == pytest.approx(mean)
    assert res["results"]["mfcc"]["1"]["precision@1"] == 1.0
    assert "supervised" in res["skipped"] and res["methods"]["random_init"]["seeds"] == [0, 1]


def test_encoder_with_task_batchnorm_absorbs_a_recording_gain(tmp_path, rng):
    """``encoder_bn=task``: the encoder's BatchNorm statistics come from the task's training
    audio, so a gain applied to a whole task's recordings (a constant shift of every log-mel
    value) is normalised away, as the statistics re-estimated for random-init are; the exported
    statistics (``pretraining``) are not."""
    from audioclr.evaluate.methods.encoder import Encoder

    waves = _clips(12, rng)
    pretrained, _ = reestimated(_loaded([8, 16], seed=3), _tracks(waves[:8]), device="cpu")
    enc = save_encoder(pretrained.encoder, tmp_path / "enc.pt", {})
    method, vectors = Encoder(), {}
    for bn in ("pretraining", "task"):
        settings = MethodSettings(device="cpu", progress=False, encoder_bn=bn)
        for gain in (1.0, 0.25):  # 0 dB and -12 dB
            tracks = _tracks([w * gain for w in waves])
            data = TrackSet(tracks=tracks, key=f"gain{gain}", train=tracks[:8])
            folder = tmp_path / "emb" / bn / method.cache_key(Source.open(enc), data, settings)
            [draw] = method.embed(Source.open(enc), data, settings, folder)
            vectors[bn, gain] = draw.emb.vectors
            if bn == "task":
                assert draw.emb.meta["bn_reestimation"] == {"train_tracks": 8, "windows": 32}
    scale = np.abs(vectors["pretraining", 1.0]).mean()
    moved = np.abs(vectors["pretraining", 1.0] - vectors["pretraining", 0.25]).mean() / scale
    kept = np.abs(vectors["task", 1.0] - vectors["task", 0.25]).mean() / scale
    assert moved > 0.05 and kept < moved / 20, (moved, kept)  # measured: 0.71 vs 0.005
    # at 0 dB, the task's statistics are the pretraining ones' (the same clips): same vectors
    np.testing.assert_allclose(vectors["task", 1.0], vectors["pretraining", 1.0], atol=1e-4)


def test_encoder_batchnorm_choice_names_its_cache_record_and_config_key(tmp_path, rng):
    from audioclr.errors import AudioclrError
    from audioclr.evaluate.methods.encoder import Encoder
    from audioclr.pipelines.bench_config import ProbeSection

    enc = save_encoder(_loaded([8, 16], seed=3).encoder, tmp_path / "enc.pt", {})
    tracks = _tracks(_clips(4, rng))
    data = TrackSet(tracks=tracks, key="k", train=tracks[:2])
    other = TrackSet(tracks=tracks, key="k", train=tracks[1:3])
    task, plain = MethodSettings(encoder_bn="task"), MethodSettings()
    keys = {
        Encoder().cache_key(Source.open(enc), d, s) for d in (data, other) for s in (task, plain)
    }
    assert len(keys) == 3  # the plain key ignores the training tracks, the task key does not
    assert Encoder().record(task)["bn_statistics"].startswith("running statistics")
    assert Encoder().record(plain)["bn_statistics"].startswith("as exported")
    with pytest.raises(ConfigError, match="encoder_bn"):
        SuiteConfig(tasks=[TaskConfig(name="t", labels="x.csv")], encoder_bn="adabn")
    with pytest.raises(ConfigError, match="probe.encoder_bn"):
        ProbeSection(encoder_bn="adabn")
    [plain_draw] = Encoder().embed(Source.open(enc), data, plain, tmp_path / "e")
    given = Source.open(plain_draw.folder)  # an embeddings folder: no BatchNorm to re-estimate
    with pytest.raises(AudioclrError, match="encoder_bn=task.*embeddings folder"):
        Encoder().embed(given, data, task, tmp_path / "e2")
