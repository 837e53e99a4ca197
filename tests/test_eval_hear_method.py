"""The ``hear:<module>[:<weights>]`` method: parsing, embeddings equal to the module's own scene
embeddings of the encoder's windows, and a HEAR module in a real probe run beside the others."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import hear_toy
import numpy as np
import pytest
import torch
import torchaudio
from conftest import tone, write_audio

from audioclr.cli import main
from audioclr.errors import ConfigError
from audioclr.evaluate.methods import (
    MethodSettings,
    Source,
    TrackSet,
    check_methods,
    display_name,
    get_method,
    is_baseline,
)
from audioclr.evaluate.tracks import open_tracks
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import save_encoder

SR = 8000  # the encoder's rate; the toy HEAR model runs at 16 kHz
FREQS = {"low": 300.0, "mid": 900.0, "high": 2500.0}


def _corpus(root: Path, rng: np.random.Generator) -> Path:
    """Three tones x 8 noisy 0.4 s tracks (5 train, 1 valid, 2 test each)."""
    labels = root / "labels.csv"
    with open(labels, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "split"])
        for name, freq in FREQS.items():
            for i in range(8):
                x = tone(freq * (1 + 0.05 * rng.standard_normal()), SR, 0.4)
                x = (x + rng.normal(0, 0.05, x.shape)).astype(np.float32)
                path = write_audio(root / "audio" / name / f"{i}.wav", x, SR)
                w.writerow([path, name, (["train"] * 5 + ["valid"] + ["test"] * 2)[i]])
    return labels


def _encoder(tmp_path: Path) -> Path:
    torch.manual_seed(7)
    enc = build_encoder(
        "melcnn", SR, widths=[8, 16], n_fft=256, hop_length=128, n_mels=16, input_samples=2000
    )
    return save_encoder(enc.eval(), tmp_path / "enc.pt", {})


def test_names_parse_into_a_baseline_with_its_module(tmp_path):
    method = get_method("hear:hear_toy")
    assert (method.module, method.weights, method.folder) == ("hear_toy", "", "hear-hear_toy")
    assert display_name("hear:hear_toy") == "HEAR hear_toy" and is_baseline("hear:hear_toy")
    weights = tmp_path / "w.pt"
    weights.touch()
    with_weights = get_method(f"hear:hear_toy:{weights}")
    assert with_weights.weights == str(weights) and "/" not in with_weights.folder
    assert with_weights.display == "HEAR hear_toy (w.pt)"
    check_methods(["encoder", f"hear:hear_toy:{weights}"])
    with pytest.raises(ConfigError, match="unknown method 'hear'") as exc:
        get_method("hear")  # the module is not optional
    assert "hear:<module>[:<weights>]" in exc.value.hint
    with pytest.raises(ConfigError, match="unknown method 'mfcc:x'"):
        get_method("mfcc:x")
    with pytest.raises(ConfigError, match="names no module"):
        get_method("hear:not a module")
    with pytest.raises(ConfigError, match="cannot import no_such_hear_module"):
        check_methods(["encoder", "hear:no_such_hear_module"])
    with pytest.raises(ConfigError, match="no weights at"):
        check_methods([f"hear:hear_toy:{tmp_path / 'missing.pt'}"])
    assert display_name("hear:no_such_hear_module") == "HEAR no_such_hear_module"


def test_vectors_are_the_modules_scene_embeddings_of_the_encoders_windows(
    tmp_path, rng, monkeypatch
):
    labels, enc = _corpus(tmp_path, rng), _encoder(tmp_path)
    source = Source.open(enc)
    tracks = open_tracks(labels, SR)[:4]
    data = TrackSet(tracks=tracks, key="four")
    settings = MethodSettings(windows=True, device="cpu", progress=False)
    [draw] = get_method("hear:hear_toy").embed(source, data, settings, tmp_path / "emb")
    assert draw.emb.meta["model_sample_rate"] == 16000 and draw.emb.meta["resampled_from"] == SR
    model = hear_toy.load_model()
    for i, track in enumerate(tracks):
        x = torchaudio.functional.resample(torch.from_numpy(track.read()), SR, 16000)
        # 0.4 s at 16 kHz = 6400 samples: windows of 4000 (the encoder's 2000 at 8 kHz) at 0 and
        # end-aligned at 2400
        windows = torch.stack([x[:4000], x[2400:6400]])
        expect = hear_toy.get_scene_embeddings(windows, model).detach().numpy()
        rows = np.asarray(draw.windows.meta["track_index"]) == i
        np.testing.assert_allclose(draw.windows.vectors[rows], expect, atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(draw.emb.vectors[i], expect.mean(0), atol=1e-4, rtol=1e-4)
    # a rerun with the same settings reuses the folder instead of calling the module again
    monkeypatch.setattr(hear_toy, "get_scene_embeddings", lambda *a: pytest.fail("recomputed"))
    [again] = get_method("hear:hear_toy").embed(source, data, settings, tmp_path / "emb")
    np.testing.assert_array_equal(again.emb.vectors, draw.emb.vectors)


def test_a_hear_module_in_a_real_probe_run(tmp_path, rng):
    labels, enc = _corpus(tmp_path, rng), _encoder(tmp_path)
    weights = tmp_path / "weights" / "toy.pt"
    weights.parent.mkdir()
    torch.save(hear_toy.load_model().state_dict(), weights)
    name = f"hear:hear_toy:{weights}"
    argv = ["probe", str(enc), str(labels), str(tmp_path / "out"), "device=cpu"]
    argv += ["--methods", "encoder", name, "random_init", "mfcc", "task.heads=[knn]"]
    argv += ["task.seeds=[0,1]", "task.fractions=[0.4,1.0]", "random_init_draws=1"]
    argv += ["probe.bootstrap=200"]
    assert main(argv) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    task = report["tasks"]["labels"]
    assert list(task["results"]) == ["encoder", name, "random_init", "mfcc"]
    record = task["methods"][name]
    assert record["display"] == "HEAR hear_toy (toy.pt)" and record["baseline"]
    [info] = record["draws"]
    assert (info["model_sample_rate"], info["resampled_from"]) == (16000, SR)
    folder = Path(info["folder"])
    assert folder.parent == tmp_path / "out" / "emb" / get_method(name).folder
    # the same label subsets, seeds and test tracks as every other method
    for fraction in ("0.4", "1.0"):
        runs = {m: task["results"][m]["knn"][fraction]["runs"] for m in task["results"]}
        keys = {m: [(r["seed"], r["train_tracks"]) for r in rs] for m, rs in runs.items()}
        assert keys[name] == keys["encoder"] == keys["mfcc"] == keys["random_init"]
        # kNN at fraction 1 draws no subset and has no randomness: one seed (probe.seeds_for)
        assert [seed for seed, _ in keys[name]] == ([0] if fraction == "1.0" else [0, 1])
        cell = task["results"][name]["knn"][fraction]["accuracy"]
        assert len(cell["ci95"]) == 2 and cell["ci95"][0] <= cell["mean"] <= cell["ci95"][1]
        means = {m: task["results"][m]["knn"][fraction]["accuracy"]["mean"] for m in runs}
        best = max((m for m in means if m != "encoder"), key=means.__getitem__)
        assert task["verdict"]["knn"][fraction]["baseline"] == best
    assert task["results"][name]["knn"]["1.0"]["accuracy"]["mean"] == 1.0  # tones: easy


def test_the_cache_key_follows_the_modules_code_and_weights(tmp_path, rng, monkeypatch):
    """Editing the HEAR module's source or its weights file changes the cache key (so the
    embeddings are computed again); an unchanged module keeps it."""
    mod = tmp_path / "mods" / "hear_edit_me.py"
    mod.parent.mkdir()
    mod.write_text(Path(hear_toy.__file__).read_text())
    monkeypatch.syspath_prepend(str(mod.parent))
    source = Source.open(_encoder(tmp_path))
    data = TrackSet(tracks=open_tracks(_corpus(tmp_path, rng), SR)[:2], key="two")
    settings = MethodSettings(windows=True, device="cpu", progress=False)
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"1")

    def key() -> str:
        return get_method(f"hear:hear_edit_me:{weights}").cache_key(source, data, settings)

    first = key()
    assert key() == first
    mod.write_text(mod.read_text() + "\n# edited\n")
    second = key()
    assert second != first
    weights.write_bytes(b"22")
    assert key() not in (first, second)
