"""Cross-validation over named folds: every track tested once, by a probe that never trained on it;
test-only stand-ins replace their fold's tracks; fold names parse; unsupported set-ups refused."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tone, write_audio

from audioclr.data.labels import load_labelled_set
from audioclr.data.splits import normalise_split
from audioclr.errors import ConfigError, LabelError
from audioclr.evaluate.folds import fold_ids, fold_splits
from audioclr.evaluate.intervals import TEST_SCORES
from audioclr.evaluate.probe import run_probe
from audioclr.evaluate.probe_config import ProbeConfig
from audioclr.evaluate.probe_data import ProbeData
from audioclr.evaluate.suite import SuiteConfig, TaskConfig, check_folded, split_counts

LINEAR = ProbeConfig(head="linear", weight_decays=[1e-6, 1e-3])


def _fold_names(n: int, k: int) -> np.ndarray:
    return np.array([f"fold{i % k}" for i in range(n)])


def test_fold_names_parse_and_bad_ones_name_the_row():
    assert normalise_split("Fold03", "x") == "fold3"
    assert normalise_split("fold2-test", "x") == "fold2-test"
    assert normalise_split("VAL", "x") == "valid"
    with pytest.raises(LabelError, match="labels.csv row 4: unknown split 'fold'"):
        normalise_split("fold", "labels.csv row 4")


def _csv(tmp_path, splits):
    rows = ["path,label,split"]
    for i, s in enumerate(splits):
        write_audio(tmp_path / f"a{i}.wav", tone(440.0, 8000, 0.1), 8000)
        rows.append(f"a{i}.wav,{'ab'[i % 2]},{s}")
    path = tmp_path / "labels.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_labels_csv_with_folds_loads_and_bad_fold_sets_are_refused(tmp_path):
    ok = load_labelled_set(_csv(tmp_path, ["fold0", "fold1", "fold2", "fold0-test"]))
    assert ok.folded and ok.splits == ["fold0", "fold1", "fold2", "fold0-test"]
    assert not load_labelled_set(_csv(tmp_path, ["train", "valid", "test"])).folded
    with pytest.raises(LabelError, match="track 3 has split 'test' while others name folds"):
        load_labelled_set(_csv(tmp_path, ["fold0", "fold1", "test"]))
    with pytest.raises(LabelError, match="2 fold.* cross-validation needs 3 or more"):
        load_labelled_set(_csv(tmp_path, ["fold0", "fold1", "fold0"]))
    with pytest.raises(LabelError, match=r"test-only rows of fold\(s\) \[5\]"):
        load_labelled_set(_csv(tmp_path, ["fold0", "fold1", "fold2", "fold5-test"]))


def test_every_track_is_tested_once_and_test_only_rows_stand_in():
    # fold 0 has stand-ins (test-only rows); folds 1-3 are tested on their own rows
    splits = np.array(
        ["fold0"] * 3 + ["fold1"] * 3 + ["fold2"] * 3 + ["fold3"] * 3 + ["fold0-test"] * 2
    )
    folds = fold_ids(splits)
    assert folds == [0, 1, 2, 3]
    views = [fold_splits(splits, i, folds) for i in range(len(folds))]
    tested = np.sum([v == "test" for v in views], axis=0)
    # independent count: the stand-ins and folds 1-3 once each, fold 0's own rows never
    np.testing.assert_array_equal(tested, [0] * 3 + [1] * 9 + [1] * 2)
    for i, v in enumerate(views):
        test_fold, valid_fold = folds[i], folds[(i + 1) % 4]
        own = np.char.startswith(splits.astype(str), f"fold{test_fold}")
        assert not np.any((v == "train") & own), "a fold trained on its own test tracks"
        assert np.all((v == "valid") == (splits == f"fold{valid_fold}"))
        assert not np.any((v == "train") & np.char.endswith(splits.astype(str), "-test"))
    assert split_counts(list(splits)) == {"folds": 4, "trainable": 12, "test_only": 2, "tested": 11}


def test_a_probe_that_could_memorise_its_test_tracks_scores_chance(rng):
    # random labels, more dimensions than tracks: a probe that trained on its test tracks would
    # score ~1 (it memorises); cross-validation must score chance
    n, dim = 240, 400
    x = rng.normal(0, 1, (n, dim)).astype(np.float32)
    y = rng.integers(0, 2, n)
    data = ProbeData(x, np.arange(n), y, _fold_names(n, 4), ["a", "b"], False)
    res = run_probe(data, LINEAR, fractions=[1.0], seeds=[0])
    run = res["1.0"]["runs"][0]
    np.testing.assert_array_equal(np.sort(run[TEST_SCORES].tracks), np.arange(n))
    assert abs(res["1.0"]["accuracy"]["mean"] - 0.5) < 0.12  # binomial std over 240: 0.032
    assert len(run["folds"]) == 4 and all("weight_decay" in f for f in run["folds"])


def test_cross_validation_scores_the_joined_folds(rng):
    # separable blobs: every fold scores ~1; the joined score is the pooled accuracy
    n, dim = 200, 8
    y = np.repeat([0, 1], n // 2)
    x = (np.where(y[:, None] == 1, 3.0, -3.0) + rng.normal(0, 1, (n, dim))).astype(np.float32)
    data = ProbeData(x, np.arange(n), y, _fold_names(n, 5), ["a", "b"], False)
    res = run_probe(data, LINEAR, fractions=[0.1, 1.0], seeds=[0, 1])
    for cell in res.values():
        assert cell["accuracy"]["mean"] > 0.97
        for run in cell["runs"]:
            pooled = np.mean([f["fold_accuracy"] for f in run["folds"]])  # equal-sized folds
            assert run["accuracy"] == pytest.approx(pooled)


def test_stand_ins_are_what_gets_scored(rng):
    # the test-only rows carry the class signal reversed: scored on them, accuracy is ~0
    n, dim = 160, 4
    y = np.repeat([0, 1], n // 2)
    x = (np.where(y[:, None] == 1, 3.0, -3.0) + rng.normal(0, 1, (n, dim))).astype(np.float32)
    splits = _fold_names(n, 4)
    flipped = -x[splits == "fold2"]
    data = ProbeData(
        np.concatenate([x, flipped]),
        np.arange(n + len(flipped)),
        np.concatenate([y, y[splits == "fold2"]]),
        np.concatenate([splits, ["fold2-test"] * len(flipped)]),
        ["a", "b"],
        False,
    )
    res = run_probe(data, LINEAR, fractions=[1.0], seeds=[0])
    folds = {i: f["fold_accuracy"] for i, f in enumerate(res["1.0"]["runs"][0]["folds"])}
    assert folds[2] < 0.05 and all(folds[i] > 0.95 for i in (0, 1, 3))


def test_fold_sets_refuse_fine_tuning_corruptions_and_supervised():
    cfg = SuiteConfig(tasks=[TaskConfig(name="t", labels="l.csv")])
    check_folded(cfg, cfg.tasks[0])  # frozen heads: fine
    with pytest.raises(ConfigError, match=r"tasks\[t\]\.heads: 'finetune' .* names folds"):
        check_folded(cfg, TaskConfig(name="t", labels="l.csv", heads=["linear", "finetune"]))
    with pytest.raises(ConfigError, match=r"tasks\[t\]\.corruptions: 'noise:10'"):
        check_folded(cfg, TaskConfig(name="t", labels="l.csv", corruptions=["noise:10"]))
    sup = SuiteConfig(tasks=cfg.tasks, methods=["encoder", "supervised"])
    with pytest.raises(ConfigError, match="methods: 'supervised'"):
        check_folded(sup, cfg.tasks[0])


def test_groups_column_reaches_the_joined_test_scores(tmp_path, rng):
    rows = ["path,label,split,group"]
    for i in range(8):
        write_audio(tmp_path / f"a{i}.wav", tone(440.0, 8000, 0.1), 8000)
        rows.append(f"a{i}.wav,{'ab'[i % 2]},fold{i % 4},prog{i // 2}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    labelled = load_labelled_set(tmp_path / "labels.csv")
    assert labelled.groups == [f"prog{i // 2}" for i in range(8)] and labelled.folded
    x = rng.normal(0, 1, (8, 3)).astype(np.float32)
    data = ProbeData(
        x,
        np.arange(8),
        labelled.targets(),
        np.asarray(labelled.splits),
        ["a", "b"],
        False,
        groups=np.asarray(labelled.groups),
    )
    run = run_probe(data, LINEAR, fractions=[1.0], seeds=[0])["1.0"]["runs"][0]
    scores = run[TEST_SCORES]
    np.testing.assert_array_equal(scores.groups, np.asarray(labelled.groups)[scores.tracks])
    (tmp_path / "bad.csv").write_text("path,label,split,group\na0.wav,a,fold0,\n")
    with pytest.raises(LabelError, match="bad.csv row 2: no group"):
        load_labelled_set(tmp_path / "bad.csv")
