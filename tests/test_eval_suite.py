"""Probe suite end to end: tiny exported encoder, tone corpus, three methods, one report."""

from __future__ import annotations

import csv
import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tone, write_audio

from audioclr.config import load_config
from audioclr.evaluate import chunks
from audioclr.evaluate.probe import ProbeConfig
from audioclr.evaluate.suite import SuiteConfig, TaskConfig, run_suite
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import save_encoder

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


@dataclass
class _Labelled:  # stand-in for audioclr.data.labels.LabelledSet until the data package has it
    paths: list
    labels: list
    classes: list
    multilabel: bool
    splits: list

    def targets(self) -> np.ndarray:
        return np.array([self.classes.index(x[0]) for x in self.labels])


def _stand_in_loader(spec, multilabel=False, seed=0, fractions=(0.7, 0.15, 0.15)):
    rows = list(csv.DictReader(open(spec)))
    classes = sorted({r["label"] for r in rows})
    return _Labelled(
        [Path(r["path"]) for r in rows],
        [[r["label"]] for r in rows],
        classes,
        False,
        [r["split"] for r in rows],
    )


@pytest.fixture
def labels_module(monkeypatch):
    try:
        import audioclr.data.labels  # noqa: F401
    except ImportError:
        mod = types.ModuleType("audioclr.data.labels")
        mod.load_labelled_set = _stand_in_loader
        monkeypatch.setitem(sys.modules, "audioclr.data.labels", mod)


def _encoder(tmp_path: Path) -> Path:
    torch.manual_seed(123)  # not the random-init baseline's seed (0)
    enc = build_encoder(
        "melcnn", SR, widths=[8, 16], n_fft=256, hop_length=128, n_mels=16, input_samples=2000
    )
    return save_encoder(enc.eval(), tmp_path / "enc.pt", {})


def test_suite_report_has_every_method_and_a_verdict(tmp_path, rng, labels_module, monkeypatch):
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
    assert len(set(t["encoder_ids"].values())) == 3  # trained, random-init and mfcc-stats differ
    assert t["tracks"] == {"train": 18, "valid": 6, "test": 6}
    # MFCC statistics separate three tones perfectly
    assert t["results"]["mfcc"]["knn"]["1.0"]["accuracy"]["mean"] == 1.0
    assert t["results"]["mfcc"]["linear"]["1.0"]["accuracy"]["mean"] >= 0.8
    # the verdict is what the numbers say: encoder mean vs the best baseline mean
    for head in ("linear", "knn"):
        for f in ("0.5", "1.0"):
            enc_mean = t["results"]["encoder"][head][f]["accuracy"]["mean"]
            best = max(
                t["results"][m][head][f]["accuracy"]["mean"] for m in ("random_init", "mfcc")
            )
            assert t["verdict"][head][f]["beats_baselines"] == (enc_mean > best)
    runs = t["results"]["encoder"]["linear"]["0.5"]["runs"]
    assert [r["train_tracks"] for r in runs] == [9, 9]  # round(0.5 * 6) = 3 per class
    out = tmp_path / "out"
    assert json.loads((out / "report.json").read_text())["tasks"]["tones"]["metric"] == "accuracy"
    md = (out / "report.md").read_text()
    assert "| mfcc | knn | 1.000 ± 0.000 | 1.000 ± 0.000 |" in md and ("✓" in md or "✗" in md)
    import matplotlib.image

    assert matplotlib.image.imread(out / "report.png").shape[0] > 100
    assert list((out / "tb").glob("events.out.tfevents*"))

    calls = []
    real = chunks._save_part
    monkeypatch.setattr(chunks, "_save_part", lambda *a: calls.append(a) or real(*a))
    again = run_suite(cfg, enc, tmp_path / "out")
    assert calls == []  # every method's embeddings were reused from OUT/emb
    assert again["tasks"]["tones"]["results"]["mfcc"] == t["results"]["mfcc"]
