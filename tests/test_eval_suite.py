"""Probe suite end to end: tiny exported encoder, tone corpus, three methods, one report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tone, write_audio

from audioclr.config import load_config
from audioclr.evaluate import chunks
from audioclr.evaluate.embed import cut_windows, embed_tracks
from audioclr.evaluate.intervals import TEST_SCORES
from audioclr.evaluate.probe_config import ProbeConfig
from audioclr.evaluate.report import public
from audioclr.evaluate.saved_scores import load_scores
from audioclr.evaluate.store import load_embeddings
from audioclr.evaluate.suite import SuiteConfig, TaskConfig, run_suite
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import load_encoder, save_encoder

SR = 8000
FREQS = {"low": 300.0, "mid": 900.0, "high": 2500.0}


def _corpus(root: Path, rng: np.random.Generator) -> Path:
    rows = []
    for name, freq in FREQS.items():
        for i in range(10):
            x = tone(freq * (1 + 0.05 * rng.standard_normal()), SR, 0.4) + rng.normal(
                0, 0.05, int(0.4 * SR)
            )
            path = write_audio(root / "audio" / name / f"{i}.wav", x.astype(np.float32), SR)
            rows.append((str(path), name, ["train"] * 6 + ["valid"] * 2 + ["test"] * 2))
    labels = root / "labels.csv"
    with open(labels, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "split"])
        for path, name, splits in rows:
            w.writerow([path, name, splits[int(Path(path).stem)]])
    return labels


def _encoder(tmp_path: Path) -> Path:
    torch.manual_seed(123)  # not the random-init baseline's seed (0)
    enc = build_encoder(
        "melcnn", SR, widths=[8, 16], n_fft=256, hop_length=128, n_mels=16, input_samples=2000
    )
    return save_encoder(enc.eval(), tmp_path / "enc.pt", {})


def test_suite_report_has_every_method_and_a_verdict(tmp_path, rng, monkeypatch):
    labels, enc = _corpus(tmp_path, rng), _encoder(tmp_path)
    task = TaskConfig(
        name="tones",
        labels=str(labels),
        fractions=[0.5, 1.0],
        seeds=[0, 1],
        heads=["linear", "knn"],
    )
    probe = load_config(ProbeConfig, None, ["max_epochs=15", "weight_decays=[0.0]"])
    cfg = SuiteConfig(tasks=[task], probe=probe, device="cpu")
    report = run_suite(cfg, enc, tmp_path / "out")
    t = report["tasks"]["tones"]
    assert set(t["results"]) == {"encoder", "random_init", "mfcc"}
    methods = t["methods"]
    assert [methods[m]["display"] for m in t["results"]] == ["SSL", "random-init", "MFCC"]
    assert not methods["encoder"]["baseline"] and methods["mfcc"]["baseline"]
    draws = methods["random_init"]["draws"]  # 3 init draws (seeds 0, 1, 2), BN stats of train
    assert methods["random_init"]["seeds"] == [d["init_seed"] for d in draws] == [0, 1, 2]
    assert all(d["bn_reestimation"] == {"train_tracks": 18, "windows": 36} for d in draws)
    ids = [methods[m]["draws"][0]["encoder_id"] for m in ("encoder", "mfcc")]
    assert len(set(ids + [d["encoder_id"] for d in draws])) == 5  # every draw is its own encoder
    # fraction 1 with kNN: one seed (no subset drawn, nothing random in the fit) x 3 draws
    assert [r["draw"] for r in t["results"]["random_init"]["knn"]["1.0"]["runs"]] == [0, 1, 2]
    assert len(t["results"]["encoder"]["knn"]["1.0"]["runs"]) == 1  # one draw, one seed
    assert t["tracks"] == {"train": 18, "valid": 6, "test": 6}
    # MFCC statistics separate three tones perfectly
    assert t["results"]["mfcc"]["knn"]["1.0"]["accuracy"]["mean"] == 1.0
    assert t["results"]["mfcc"]["linear"]["1.0"]["accuracy"]["mean"] >= 0.8
    # the encoder is compared with the best baseline by mean (random-init: over all its draws)
    for head in ("linear", "knn"):
        for f in ("0.5", "1.0"):
            means = {
                m: t["results"][m][head][f]["accuracy"]["mean"] for m in ("random_init", "mfcc")
            }
            assert t["verdict"][head][f]["baseline"] == max(means, key=means.__getitem__)
            assert t["verdict"][head][f]["verdict"] in ("beats", "tie", "loses")
    runs = t["results"]["encoder"]["linear"]["0.5"]["runs"]
    assert [r["train_tracks"] for r in runs] == [9, 9]  # round(0.5 * 6) = 3 per class
    out = tmp_path / "out"
    # every run's test predictions are saved: they score what the report says
    saved = load_scores(out / "scores" / "tones.npz")
    assert t["scores"] == str(out / "scores" / "tones.npz")
    for m in ("encoder", "random_init", "mfcc"):
        for head in ("linear", "knn"):
            for f in ("0.5", "1.0"):
                back = saved[m][head][f]
                assert len(back) == len(t["results"][m][head][f]["runs"])
                for r, kept in zip(back, t["results"][m][head][f]["runs"], strict=True):
                    s = r[TEST_SCORES]
                    acc = float((s.scores.argmax(axis=1) == s.y_true).mean())
                    assert acc == pytest.approx(kept["accuracy"]) == r["accuracy"]
                    assert (r["seed"], r["draw"]) == (kept["seed"], kept["draw"])
    assert json.loads((out / "report.json").read_text())["tasks"]["tones"]["metric"] == "accuracy"
    md = (out / "report.md").read_text()
    assert any(line.startswith("| mfcc | knn | 1.000") for line in md.splitlines())
    import matplotlib.image

    assert matplotlib.image.imread(out / "report.png").shape[0] > 100
    assert list((out / "tb").glob("events.out.tfevents*"))

    calls = []
    real = chunks._save_part
    monkeypatch.setattr(chunks, "_save_part", lambda *a: calls.append(a) or real(*a))
    fits = []
    import audioclr.evaluate.probe as probe_module

    real_fit = probe_module.probe_once
    monkeypatch.setattr(probe_module, "probe_once", lambda *a: fits.append(a) or real_fit(*a))
    again = run_suite(cfg, enc, tmp_path / "out")
    assert calls == []  # every method's embeddings were reused from OUT/emb
    assert fits == []  # and every probe's result from OUT/emb/<method>/probes
    a = again["tasks"]["tones"]
    assert public(a["results"]) == public(t["results"]) and a["verdict"] == t["verdict"]
    cfg.tasks[0].heads = ["knn"]
    cfg.tasks[0].seeds = [0, 1, 2]  # another probe: fitted, on the kept embeddings
    third = run_suite(cfg, enc, tmp_path / "out")
    assert calls == [] and len(fits) > 0
    assert third["tasks"]["tones"]["results"]["mfcc"]["knn"]["1.0"]["accuracy"]["mean"] == 1.0


def _tags_corpus(root: Path, rng: np.random.Generator) -> Path:
    """Tags: "low" (300 Hz, else 2500 Hz) and "noisy" (loud noise); 1.2 s tracks."""
    splits = ["train"] * 20 + ["valid"] * 6 + ["test"] * 6
    lines = ["path,tags,split"]
    for i, split in enumerate(splits):
        low, noisy = i % 2 == 0, (i // 2) % 2 == 0
        x = tone(300.0 if low else 2500.0, SR, 1.2)
        x = x + rng.normal(0, 0.3 if noisy else 0.01, x.shape)
        write_audio(root / "audio" / f"{i:02d}.wav", x.astype(np.float32), SR)
        tags = ";".join(t for t, on in (("low", low), ("noisy", noisy)) if on) or "none"
        lines.append(f"audio/{i:02d}.wav,{tags},{split}")
    (root / "tags.csv").write_text("\n".join(lines) + "\n")
    return root / "tags.csv"


def test_multilabel_windows_suite_from_an_embeddings_folder(tmp_path, rng):
    labels, enc = _tags_corpus(tmp_path, rng), _encoder(tmp_path)
    loaded = load_encoder(enc)
    emb_dir = tmp_path / "emb"
    embed_tracks(
        loaded,
        tmp_path / "audio",
        emb_dir,
        layer="all",
        hop_seconds=0.1,
        keep_windows=True,
        progress=False,
        meta={"encoder_path": str(enc)},
    )
    task = TaskConfig(name="tags", labels=str(labels), windows=True, heads=["linear"])
    probe = load_config(ProbeConfig, None, ["max_epochs=15", "weight_decays=[0.0]"])
    methods = ["encoder", "random_init", "mfcc", "supervised"]
    cfg = SuiteConfig(
        tasks=[task],
        methods=methods,
        probe=probe,
        device="cpu",
        supervised_epochs=2,
        random_init_draws=1,
    )
    report = run_suite(cfg, emb_dir, tmp_path / "out")
    t = report["tasks"]["tags"]
    assert t["multilabel"] and t["metric"] == "roc_auc" and t["layer"] == "all"
    assert set(t["results"]) == set(methods)
    ids = {d["encoder_id"] for m in methods for d in t["methods"][m]["draws"]}
    assert len(ids) == 4  # given encoder, random-init, supervised (one draw each), mfcc-stats
    assert t["methods"]["encoder"]["draws"][0]["folder"] == str(emb_dir)  # used as is
    sup = load_embeddings(next((tmp_path / "out" / "emb" / "supervised").iterdir()) / "seed-0")
    assert sup.meta["layer"] == "all" and sup.meta["hop_samples"] == 800  # as the given folder
    assert sup.meta["supervised_epochs"] == 2 and sup.meta["bn_reestimation"]["train_tracks"] == 20
    enc_run = t["results"]["encoder"]["linear"]["1.0"]["runs"][0]
    mfcc_run = t["results"]["mfcc"]["linear"]["1.0"]["runs"][0]
    windows_per_track = len(cut_windows(np.zeros(int(1.2 * SR)), 2000, 800, 1))
    assert (
        enc_run["train_rows"] == 20 * windows_per_track
    )  # probed on windows of the 20 train tracks
    assert (
        t["results"]["random_init"]["linear"]["1.0"]["runs"][0]["train_rows"]
        == enc_run["train_rows"]
    )
    assert mfcc_run["train_rows"] == 20  # one vector per track
    assert mfcc_run["roc_auc"] > 0.9  # pitch and noise level are easy for MFCC statistics
    assert 0.0 <= enc_run["pr_auc"] <= 1.0


def test_probe_warns_and_records_when_pretraining_heard_the_test_audio(tmp_path, rng) -> None:
    from audioclr.data.cache import prepare_cache
    from audioclr.ssl.export import training_sources

    labels = _corpus(tmp_path, rng)
    prepare_cache(
        tmp_path / "audio" / "mid",
        tmp_path / "cache",
        sample_rate=SR,
        progress=False,
        min_duration=0.1,
    )
    torch.manual_seed(1)
    enc = build_encoder(
        "melcnn", SR, widths=[8, 16], n_fft=256, hop_length=128, n_mels=16, input_samples=2000
    )
    leaky = save_encoder(
        enc.eval(), tmp_path / "leaky.pt", {}, trained_on=training_sources(tmp_path / "cache")
    )
    cfg = SuiteConfig(
        tasks=[TaskConfig(name="tones", labels=str(labels), heads=["knn"], seeds=[0])],
        methods=["encoder"],
        device="cpu",
    )
    with pytest.warns(UserWarning, match="pretrained on 2 of the 6 test files"):
        t = run_suite(cfg, leaky, tmp_path / "out")["tasks"]["tones"]
    assert (t["pretraining_leak"]["seen"], t["pretraining_leak"]["test_files"]) == (2, 6)
    assert "pretrained on 2 of the 6" in t["warnings"][0]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "pretrained on 2 of the 6 test files" in md
    clean = save_encoder(
        enc.eval(),
        tmp_path / "clean.pt",
        {},
        trained_on={"cache": "c", "sources": [], "fingerprints": []},
    )
    t = run_suite(cfg, clean, tmp_path / "out2")["tasks"]["tones"]
    assert t["pretraining_leak"]["seen"] == 0 and not t["warnings"]


def test_layerwise_table_probes_each_block_alone_and_all(tmp_path, rng) -> None:
    labels, enc = _corpus(tmp_path, rng), _encoder(tmp_path)
    cfg = SuiteConfig(
        tasks=[
            TaskConfig(
                name="tones", labels=str(labels), heads=["knn"], fractions=[0.5, 1.0], seeds=[0, 1]
            )
        ],
        methods=["encoder"],
        device="cpu",
    )
    t = run_suite(cfg, enc, tmp_path / "out")["tasks"]["tones"]
    lw = t["layerwise"]
    assert (lw["fraction"], lw["head"]) == (1.0, "linear")
    assert {k: v["dim"] for k, v in lw["layers"].items()} == {"block1": 16, "block2": 32, "all": 48}
    # "all" here is the same linear probe as a suite run with head linear on the same vectors
    linear = SuiteConfig(
        tasks=[
            TaskConfig(
                name="tones", labels=str(labels), heads=["linear"], fractions=[1.0], seeds=[0, 1]
            )
        ],
        methods=["encoder"],
        device="cpu",
    )
    again = run_suite(linear, enc, tmp_path / "out")["tasks"]["tones"]
    cell = again["results"]["encoder"]["linear"]["1.0"]["accuracy"]
    assert lw["layers"]["all"]["mean"] == cell["mean"]
    assert "| block1 | 16 |" in (tmp_path / "out" / "report.md").read_text()
    last = SuiteConfig(
        tasks=[
            TaskConfig(name="tones", labels=str(labels), heads=["knn"], layer="last", seeds=[0])
        ],
        methods=["encoder"],
        device="cpu",
    )
    assert run_suite(last, enc, tmp_path / "o2")["tasks"]["tones"]["layerwise"] == {}
