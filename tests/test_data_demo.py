"""Demo corpus: deterministic bytes, 16-bit WAVs, labels loudness/duration cannot predict."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest
import soundfile as sf
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from audioclr.data.demo import CLASSES, make_demo_corpus
from audioclr.data.labels import load_labelled_set


def digest(root) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    make_demo_corpus(out, seed=0, per_class=12, progress=False, unlabeled_per_class=3)
    return out


def test_same_seed_same_bytes_other_seed_differs(corpus, tmp_path) -> None:
    make_demo_corpus(tmp_path / "a", seed=0, per_class=2, progress=False, unlabeled_per_class=0)
    make_demo_corpus(tmp_path / "b", seed=1, per_class=2, progress=False, unlabeled_per_class=0)
    a, b = digest(tmp_path / "a"), digest(tmp_path / "b")
    full = digest(corpus)
    assert all(
        full[k] == v for k, v in a.items() if k != "labels.csv"
    )  # per-track seeding: size-independent
    assert a.keys() == b.keys()
    assert all(a[k] != b[k] for k in a if k != "labels.csv")


def test_files_and_labels(corpus) -> None:
    rows = list(csv.reader((corpus / "labels.csv").open()))
    assert rows[0] == ["path", "label"] and len(rows) == 1 + 12 * len(CLASSES)
    ds = load_labelled_set(corpus / "labels.csv")
    assert ds.classes == CLASSES and list(np.bincount(ds.targets())) == [12] * len(CLASSES)
    for p in ds.paths[::7]:
        info = sf.info(str(p))
        assert (info.samplerate, info.subtype, info.channels) == (22050, "PCM_16", 1)
        assert 4.0 <= info.duration <= 8.0


def test_rms_and_duration_predict_nothing(corpus) -> None:
    ds = load_labelled_set(corpus / "labels.csv")
    feats = []
    for p in ds.paths:
        x, sr = sf.read(str(p), dtype="float32")
        feats.append([np.sqrt(np.mean(x**2)), len(x) / sr])
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    acc = cross_val_score(
        probe, np.array(feats), ds.targets(), cv=StratifiedKFold(4, shuffle=True, random_state=0)
    )
    assert acc.mean() < 0.2 + 0.15  # chance is 0.2 for five classes


def test_unlabeled_part_is_disjoint_balanced_and_unnamed(corpus) -> None:
    labelled = {h for k, h in digest(corpus / "audio").items()}
    unlabeled = digest(corpus / "unlabeled")
    assert len(unlabeled) == 3 * len(CLASSES)
    assert all(name.startswith("track_") for name in unlabeled)  # no class in the name
    assert not labelled & set(unlabeled.values())  # other tracks, not copies
    assert len(set(unlabeled.values())) == len(unlabeled)
    # each file is one of the class streams (seed, class, i, 1), each stream written once
    from audioclr.data.demo import synth_track

    files = [sf.read(str(corpus / "unlabeled" / n), dtype="float32")[0] for n in sorted(unlabeled)]
    matched = []
    for ci, c in enumerate(CLASSES):
        for i in range(3):
            x = synth_track(c, np.random.default_rng([0, ci, i, 1]))
            hits = [
                k
                for k, f in enumerate(files)
                if len(f) == len(x) and np.abs(f - x).max() <= 1.5 / 32768
            ]
            assert len(hits) == 1, (c, i, hits)
            matched.append(hits[0])
    assert sorted(matched) == list(range(len(files)))
